"""Turning fused label scores into calibrated confidences and decisions, all fitted on validation.

* Platt scaling: one scale and one bias shared by every label,
  ``p = sigmoid(scale * score + bias)``, fitted by logistic regression on the
  validation scores (few parameters, so a few hundred samples suffice).
* Thresholds: per label, the cut that maximises that label's F1 on
  validation; labels with too few validation positives share one global cut.
* Reliability table: confidence bins with the accuracy inside each, to check
  that "0.9" means right nine times in ten.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def fit_platt(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(scale, bias) mapping raw label scores to probabilities, pooled over all labels."""
    model = LogisticRegression(C=1e4, max_iter=1000)
    model.fit(scores.reshape(-1, 1), targets.reshape(-1))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def choose_thresholds(probabilities: np.ndarray, targets: np.ndarray, min_positives: int = 5,
                      grid: np.ndarray | None = None) -> np.ndarray:
    """Per-label decision thresholds that maximise F1 on validation."""
    grid = np.linspace(0.05, 0.95, 19) if grid is None else grid

    def best_cut(p: np.ndarray, y: np.ndarray) -> float:
        scores = [f1_score(y, p >= cut, zero_division=0) for cut in grid]
        return float(grid[int(np.argmax(scores))])

    shared = best_cut(probabilities.reshape(-1), targets.reshape(-1))
    return np.array([best_cut(probabilities[:, j], targets[:, j]) if targets[:, j].sum() >= min_positives
                     else shared for j in range(targets.shape[1])])


def decide(probabilities: np.ndarray, thresholds: np.ndarray, at_least_one: bool = True) -> np.ndarray:
    """Boolean label matrix: labels over their threshold, and the best label when none is."""
    chosen = probabilities >= thresholds
    if at_least_one:
        chosen[np.arange(len(chosen)), probabilities.argmax(axis=1)] = True
    return chosen


def reliability_table(confidences: np.ndarray, correct: np.ndarray,
                      edges=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)) -> list[dict]:
    """Per confidence bin: how many predictions, their mean confidence and their accuracy."""
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidences >= low) & ((confidences < high) if high < 1.0 else (confidences <= high))
        rows.append({"bin": f"[{low:.2f}, {high:.2f}{']' if high == 1.0 else ')'}",
                     "count": int(inside.sum()),
                     "mean_confidence": float(confidences[inside].mean()) if inside.any() else float("nan"),
                     "accuracy": float(correct[inside].mean()) if inside.any() else float("nan")})
    return rows


def top1_hits(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Whether each row's best-scoring label is one of its true labels."""
    return targets[np.arange(len(scores)), scores.argmax(axis=1)] == 1


def binary_cross_entropy(probabilities: np.ndarray, targets: np.ndarray) -> float:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean())
