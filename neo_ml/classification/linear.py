"""One linear model per label, stored as plain arrays (coef, intercept)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# A label that never (or always) occurs in the training data gets this constant logit.
ABSENT_LOGIT = 10.0


def fit_per_label(features, targets: np.ndarray, make_estimator: Callable) -> tuple[np.ndarray, np.ndarray]:
    """(coef: labels x features, intercept: labels) from one binary linear model per label."""
    coef = np.zeros((targets.shape[1], features.shape[1]), dtype=np.float32)
    intercept = np.zeros(targets.shape[1], dtype=np.float32)
    for j in range(targets.shape[1]):
        column = targets[:, j]
        if column.min() == column.max():
            intercept[j] = ABSENT_LOGIT if column[0] else -ABSENT_LOGIT
            continue
        estimator = make_estimator().fit(features, column)
        coef[j], intercept[j] = np.ravel(estimator.coef_), np.ravel(estimator.intercept_)[0]
    return coef, intercept
