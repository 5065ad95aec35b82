"""The sparse lexical side of the classifier: TF-IDF and one linear SVM per label.

Sublinear TF-IDF with a LinearSVC per label is the strongest lexical model
measured here (0.851 accuracy on 20NG, shared/BENCHMARKS.md); its margins are
turned into probabilities later, by the fused model's calibration.

Its state is plain arrays and a vocabulary, so it is saved as safetensors plus
JSON like the rest of a checkpoint (no pickle).
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from neo_ml.classification.linear import fit_per_label


class LexicalScorer:
    """``ngrams`` 1 reads words; 2 words and pairs of adjacent words."""

    def __init__(self, C: float = 1.0, min_df: int = 2, max_features: int | None = 200_000, ngrams: int = 1):
        self.C, self.min_df, self.max_features, self.ngrams = C, min_df, max_features, ngrams

    def fit(self, texts: list[str], targets: np.ndarray) -> LexicalScorer:
        min_df = self.min_df if len(texts) >= 50 else 1  # tiny data: keep every word
        self.vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=min_df, max_features=self.max_features,
                                          ngram_range=(1, self.ngrams))
        features = self.vectorizer.fit_transform(texts)
        self.coef, self.intercept = fit_per_label(features, targets, lambda: LinearSVC(C=self.C))
        return self

    def scores(self, texts: list[str]) -> np.ndarray:
        """Per-label logits, one row per text."""
        return np.asarray(self.vectorizer.transform(texts) @ self.coef.T) + self.intercept

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays, JSON-ready values) that ``from_state`` rebuilds the scorer from."""
        vocabulary = {word: int(i) for word, i in self.vectorizer.vocabulary_.items()}
        arrays = {"lexical.idf": self.vectorizer.idf_.astype(np.float32), "lexical.coef": self.coef,
                  "lexical.intercept": self.intercept}
        return arrays, {"vocabulary": vocabulary, "C": self.C, "min_df": self.min_df, "ngrams": self.ngrams}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], values: dict) -> LexicalScorer:
        ngrams = values.get("ngrams", 1)  # checkpoints before 2026-12-03 read words only
        scorer = cls(C=values["C"], min_df=values["min_df"], ngrams=ngrams)
        scorer.vectorizer = TfidfVectorizer(sublinear_tf=True, vocabulary=values["vocabulary"],
                                            ngram_range=(1, ngrams))
        scorer.vectorizer.idf_ = np.asarray(arrays["lexical.idf"], dtype=np.float64)
        scorer.coef, scorer.intercept = np.asarray(arrays["lexical.coef"]), np.asarray(arrays["lexical.intercept"])
        return scorer
