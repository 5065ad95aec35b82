"""One training run of the classifier: load, fit, test when there is a test file, save the checkpoint folder.

Fusion weight, calibration and thresholds are chosen on out-of-fold scores of
the training data (cross-fitting) or, when the encoder is tuned, on a
validation share of it; the test file is only scored.
"""

from __future__ import annotations

from pathlib import Path

from neo_ml.classification.checkpoint import save_classifier
from neo_ml.classification.data import load_text_data
from neo_ml.classification.evaluate import evaluate
from neo_ml.classification.model import ClassifierConfig, TaxonomyClassifier
from neo_ml.tracking import CLASSIFIER_MODEL, Tracker, track_training


def train_classifier(data: str, config: ClassifierConfig, output: Path, progress: bool = True,
                     tracker: Tracker | None = None) -> dict:
    """Train on ``data`` (a corpus name or a JSON file), save to ``output``; returns the metrics. With a
    ``tracker``, the run is logged to MLflow and the folder becomes a version of ``neo-ml-classifier``."""
    train, test, checksum = load_text_data(data)
    model = TaxonomyClassifier(config)
    metrics = {f"validation_{k}": v for k, v in model.fit(train, progress=progress).items()}
    if test is not None:
        metrics |= {f"test_{k}": v for k, v in evaluate(model, test, progress).items()}
    save_classifier(model, output, metrics, checksum)
    if tracker is not None:
        track_training(tracker, CLASSIFIER_MODEL, {"config": config.to_dict(), "data": data, "data_checksum": checksum},
                       model.history, metrics, [output])
    return metrics
