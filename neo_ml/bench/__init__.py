"""Benchmark suites and what they share (``timing``); ``python -m neo_ml.benchmark`` runs them."""
