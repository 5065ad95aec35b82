"""Test metrics of a trained classifier: accuracy, F1 (micro, macro, per class), calibration."""

from __future__ import annotations

import time

import numpy as np
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from neo_ml.classification import calibration
from neo_ml.classification.metrics import classification_report
from neo_ml.classification.model import TaxonomyClassifier


def evaluate(model: TaxonomyClassifier, test, progress: bool = False, probabilities: np.ndarray | None = None) -> dict:
    """Test metrics, F1 per class, and how often the top-1 prediction is right per confidence bin.

    ``probabilities``: the model's ``predict_proba`` of the test texts, when the caller already has them.
    """
    texts, truth = [text for text, _ in test], [labels for _, labels in test]
    started, scored_here = time.perf_counter(), probabilities is None
    probabilities = model.predict_proba(texts, progress) if scored_here else probabilities
    chosen = model.decide(probabilities)
    seconds = time.perf_counter() - started
    labels = list(model.label_map.labels)
    predicted = [[labels[j] for j in np.flatnonzero(row)] for row in chosen]
    report = classification_report(truth, predicted, probabilities, labels)
    confidence = probabilities.max(axis=1)
    truth_matrix = MultiLabelBinarizer(classes=labels).fit_transform(truth)
    correct = calibration.top1_hits(probabilities, truth_matrix)
    confident = confidence >= 0.9
    per_class = f1_score(truth_matrix, chosen, average=None, zero_division=0)
    return {**report, "per_class_f1": dict(zip(labels, map(float, per_class), strict=True)),
            "confident_share": float(confident.mean()),
            "confident_accuracy": float(correct[confident].mean()) if confident.any() else float("nan"),
            "reliability": calibration.reliability_table(confidence, correct),
            **({"seconds": seconds} if scored_here else {})}  # scoring time, when it was scored here
