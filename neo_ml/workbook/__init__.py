"""The notebook workbook's library: the papermill pipeline, its plots and report, notebook upkeep.

``pipeline`` runs the four notebooks into one run folder, ``reporting`` draws
their plots and writes ``report.md``, ``notebooks`` keeps the committed
notebooks clean for nbval (``python -m neo_ml.workbook refresh|clean``).
"""
