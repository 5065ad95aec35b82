"""Classification metrics by the protocols of shared/BENCHMARKS.md, computed with scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import MultiLabelBinarizer


def classification_report(truth: list[list[str]], predicted: list[list[str]], scores: np.ndarray,
                          labels: list[str]) -> dict[str, float]:
    """Accuracy and macro-F1 for single-label data; micro/macro-F1 and top-1 precision for multi-label.

    ``scores`` (documents x labels, columns in ``labels`` order) give the top-1
    prediction. Macro-F1 averages over the labels present in ``truth``.
    Accuracy is exact-set match (for single-label data, ordinary accuracy).
    """
    binarizer = MultiLabelBinarizer(classes=labels)
    y_true, y_pred = binarizer.fit_transform(truth), binarizer.transform(predicted)
    present = np.flatnonzero(y_true.sum(axis=0) > 0)
    top1 = np.asarray(scores).argmax(axis=1)
    report = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "top1_precision": float(y_true[np.arange(len(top1)), top1].mean()),
        "documents": len(truth),
    }
    return report
