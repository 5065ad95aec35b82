"""TF-IDF with a linear model: the lexical baseline every classifier figure is shown beside.

It is the classifier's lexical view alone (sublinear TF-IDF, min_df 2, a
LinearSVC per label; 0.851 accuracy on 20NG in shared/BENCHMARKS.md).
Single-label data predicts the best-scoring label; multi-label data predicts
every label with a positive margin, and at least the best one.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.preprocessing import MultiLabelBinarizer

from neo_ml.classification.lexical import LexicalScorer
from neo_ml.classification.metrics import classification_report
from neo_ml.data.text import LabeledText


class TfidfLinearBaseline:
    def __init__(self, C: float = 1.0, min_df: int = 2):
        self.binarizer = MultiLabelBinarizer()
        self.lexical = LexicalScorer(C=C, min_df=min_df)

    def fit(self, samples: list[LabeledText]) -> TfidfLinearBaseline:
        texts, labels = zip(*samples, strict=True)
        targets = self.binarizer.fit_transform(labels)
        self.multi_label = bool((targets.sum(axis=1) > 1).any())
        self.lexical.fit(list(texts), targets)
        return self

    @property
    def labels(self) -> list[str]:
        return list(self.binarizer.classes_)

    def decision_scores(self, texts: list[str]) -> np.ndarray:
        return self.lexical.scores(list(texts))

    def predict(self, texts: list[str]) -> list[list[str]]:
        scores = self.decision_scores(texts)
        chosen = (scores > 0) if self.multi_label else np.zeros_like(scores, dtype=bool)
        chosen[np.arange(len(scores)), scores.argmax(axis=1)] = True
        return [[self.labels[j] for j in np.flatnonzero(row)] for row in chosen]


def evaluate_baseline(train: list[LabeledText], test: list[LabeledText], **kwargs) -> dict:
    """Fit on ``train``, report on ``test``, with the training wall time."""
    started = time.perf_counter()
    model = TfidfLinearBaseline(**kwargs).fit(train)
    seconds = time.perf_counter() - started
    texts, truth = zip(*test, strict=True)
    scores = model.decision_scores(list(texts))
    report = classification_report(list(truth), model.predict(list(texts)), scores, model.labels)
    return {**report, "train_seconds": seconds}
