"""Benchmark suites, one file each (``ncf``, ``classifier``, ``scale``, ``worst_case``, ``gpu_check``), and what
they share (``timing``); ``python -m neo_ml.benchmark SUITE`` runs them."""
