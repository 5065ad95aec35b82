"""A pipeline run in MLflow, read from its run folder: one parent run, one child run per notebook stage.

Each child run gets the stage's parameters, the numbers of ``metrics/<stage>.json``, the executed
notebook, and, for the training stages, the per-epoch curves (``step=epoch``) and the checkpoint, which
becomes a version of ``neo-ml-ncf`` or ``neo-ml-classifier`` under the alias ``benchmark`` (the folder
names ``benchmark_v1`` keep working). The parent run gets the whole config, provenance, ``report.md``,
``manifest.json`` and the plots. Read from the folder after each stage, so the notebooks know nothing of
MLflow and a run without tracking is the same run.
"""

from __future__ import annotations

import json
from pathlib import Path

from neo_ml.files import checksum_path
from neo_ml.tracking import CLASSIFIER_MODEL, NCF_MODEL, Tracker

REGISTERED = {"ncf": NCF_MODEL, "classification": CLASSIFIER_MODEL}  # stage -> model its checkpoint versions


def _stage_metrics(run_dir: Path, stage: str) -> dict:
    path = run_dir / "metrics" / f"{stage}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _training_history(stage: str, checkpoint: Path) -> list[dict]:
    """The per-epoch records a checkpoint keeps: the recommender's epochs, the classifier's tuning epochs
    (none with a frozen encoder)."""
    if stage == "classification":
        saved = checkpoint / "training_metrics.json"
        saved = json.loads(saved.read_text()) if saved.is_file() else {}
        return list(saved.get("validation", saved).get("tuning_epochs") or [])
    from neo_ml.ncf.checkpoint import load_ncf_checkpoint

    return list(load_ncf_checkpoint(checkpoint).get("training_history") or [])


def _full_config(stage: str, parameters: dict, searched: dict | None = None) -> dict:
    """Every field of a training stage's config, as its notebook builds it (the YAML sets only some), with
    the fields its search chose (``TUNE_TRIALS``)."""
    from neo_ml.workbook.pipeline import CONFIGS

    if stage not in CONFIGS:
        return {}
    given = {"seed": parameters.get("SEED", 42), **(parameters.get("CONFIG") or {}), **(searched or {})}
    return {"model_config": CONFIGS[stage].from_mapping(given, "config").to_dict()}


def track_stage(tracker: Tracker, stage: str, parameters: dict, run_dir: Path, failed: bool = False) -> None:
    """One stage's child run, from what the stage left in ``run_dir``."""
    from neo_ml.workbook.pipeline import STAGES

    metrics = _stage_metrics(run_dir, stage)
    tracker.log_params({**{key.lower(): value for key, value in parameters.items()},
                        **_full_config(stage, parameters, (metrics.get("search") or {}).get("best_params"))})
    tracker.log_artifact(run_dir / "notebooks" / STAGES[stage], "notebooks")
    tracker.log_artifact(run_dir / "metrics" / f"{stage}.json", "metrics")
    checkpoint = Path(metrics["checkpoint"]) if metrics.get("checkpoint") else None
    saved = stage in REGISTERED and checkpoint is not None and checkpoint.exists() and not failed
    tracker.log_curves_and_figures(_training_history(stage, checkpoint) if saved else [], metrics)
    if saved:
        files = [checkpoint] if checkpoint.is_dir() else [checkpoint, checksum_path(checkpoint)]
        for path in files:
            tracker.log_artifact(path, "checkpoint")
        tracker.register(REGISTERED[stage], "checkpoint", aliases=["benchmark"])
    tracker.finish(failed=failed)


def track_pipeline(tracker: Tracker, manifest: dict, run_dir: Path) -> None:
    """The parent run: config, provenance, timings, report, manifest and plots."""
    tracker.log_params({"run": manifest["run"], "config_file": manifest["config"], "config": manifest["parameters"],
                        "git_commit": manifest["git_commit"] or "unknown", "packages": manifest["package_versions"],
                        "data_checksums": manifest.get("data_checksums", {})})
    tracker.log_metrics({f"seconds_{stage}": seconds for stage, seconds in manifest["seconds"].items()})
    for name in ("report.md", "manifest.json"):
        tracker.log_artifact(run_dir / name)
    tracker.log_artifact(run_dir / "plots", "plots")
    tracker.finish()
