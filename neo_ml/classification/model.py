"""The taxonomy classifier: a transformer's view and a lexical view of the text, fused and calibrated.

Semantic side: mean-pooled embeddings of the encoder (all-MiniLM-L6-v2 by
default), one logistic regression per label on top. Lexical side: TF-IDF with
one logistic regression per label. Their logits are mixed with a weight
chosen on validation, mapped to probabilities by Platt scaling fitted on
validation, and cut by per-label thresholds chosen on validation.

On CPU the encoder stays frozen, so each text is encoded once (20NG's
11,293 training documents take about 5.5 minutes at 256 tokens on 2 cores)
and everything after that trains in seconds. A frozen MiniLM alone reaches
0.787 test accuracy on 20NG, TF-IDF alone 0.851, and the fusion 0.861.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from neo_ml.classification import calibration
from neo_ml.classification.encoder import DEFAULT_ENCODER, embed, load_encoder, resolve_encoder
from neo_ml.classification.lexical import LexicalScorer
from neo_ml.classification.metrics import classification_report
from neo_ml.data.text import LabeledText, LabelMap, augment_classification_data


@dataclass
class ClassifierConfig:
    """Every knob of a training run; saved with the checkpoint."""

    encoder: str = DEFAULT_ENCODER
    max_length: int = 256
    batch_size: int = 32
    lexical_C: float = 10.0
    semantic_C: float = 10.0
    validation_fraction: float = 0.15
    augment_below: int = 500
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


def _one_vs_rest(features: np.ndarray, targets: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray]:
    model = OneVsRestClassifier(LogisticRegression(C=C, max_iter=3000)).fit(features, targets)
    coef = np.vstack([est.coef_ for est in model.estimators_]).astype(np.float32)
    return coef, np.array([est.intercept_[0] for est in model.estimators_], dtype=np.float32)


def split_for_validation(samples: list[LabeledText], fraction: float, seed: int
                         ) -> tuple[list[LabeledText], list[LabeledText]]:
    """Stratified on each sample's first label where every class has two samples, else random."""
    first = [labels[0] for _, labels in samples]
    counts = {label: first.count(label) for label in set(first)}
    stratify = first if min(counts.values()) >= 2 and len(samples) * fraction >= len(counts) else None
    train, validation = train_test_split(samples, test_size=fraction, random_state=seed, stratify=stratify)
    return list(train), list(validation)


class TaxonomyClassifier:
    def __init__(self, config: ClassifierConfig | None = None):
        self.config = config or ClassifierConfig()
        self._encoder = None

    # -- pieces ----------------------------------------------------------------------------
    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = load_encoder(self.config.encoder)
        return self._encoder

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        tokenizer, model = self.encoder
        return _normalise(embed(texts, tokenizer, model, self.config.max_length, self.config.batch_size,
                                progress=progress))

    def raw_scores(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Fused per-label logits, before calibration."""
        embeddings = self.embed(texts) if embeddings is None else embeddings
        semantic = embeddings @ self.semantic_coef.T + self.semantic_intercept
        return self.fusion_weight * self.lexical.scores(texts) + (1 - self.fusion_weight) * semantic

    def predict_proba(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        scale, bias = self.platt
        return calibration.sigmoid(scale * self.raw_scores(texts, embeddings) + bias)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Chosen labels: the best one only when training data had one label per text, else every
        label over its threshold (and at least the best)."""
        if self.single_label:
            chosen = np.zeros(probabilities.shape, dtype=bool)
            chosen[np.arange(len(chosen)), probabilities.argmax(axis=1)] = True
            return chosen
        return calibration.decide(probabilities, self.thresholds)

    # -- training --------------------------------------------------------------------------
    def fit(self, samples: list[LabeledText], progress: bool = False) -> dict:
        """Train on ``samples``; hold out a validation split to choose fusion, calibration, thresholds.

        Returns validation metrics: f1 (micro), precision, recall, loss (BCE of
        the calibrated probabilities), accuracy, macro_f1.
        """
        config, started = self.config, time.perf_counter()
        self.label_map = LabelMap.from_samples(samples)
        self.single_label = all(len(labels) == 1 for _, labels in samples)
        binarizer = MultiLabelBinarizer(classes=list(self.label_map.labels))
        train, validation = split_for_validation(samples, config.validation_fraction, config.seed)
        if len(train) < config.augment_below:  # small data only, after the split: no leakage
            train = augment_classification_data(train, target_size=config.augment_below, seed=config.seed)
        y_train = binarizer.fit_transform([labels for _, labels in train])
        y_val = binarizer.transform([labels for _, labels in validation])
        train_texts, val_texts = [t for t, _ in train], [t for t, _ in validation]

        self.lexical = LexicalScorer(C=config.lexical_C).fit(train_texts, y_train)
        train_embeddings, val_embeddings = self.embed(train_texts, progress), self.embed(val_texts, progress)
        self.semantic_coef, self.semantic_intercept = _one_vs_rest(train_embeddings, y_train, config.semantic_C)

        lexical_val = self.lexical.scores(val_texts)
        semantic_val = val_embeddings @ self.semantic_coef.T + self.semantic_intercept
        weights = np.linspace(0, 1, 21)
        top1 = [calibration.top1_hits(w * lexical_val + (1 - w) * semantic_val, y_val).mean() for w in weights]
        self.fusion_weight = float(weights[int(np.argmax(top1))])
        fused = self.fusion_weight * lexical_val + (1 - self.fusion_weight) * semantic_val
        self.platt = calibration.fit_platt(fused, y_val)
        probabilities = calibration.sigmoid(self.platt[0] * fused + self.platt[1])
        self.thresholds = calibration.choose_thresholds(probabilities, y_val)

        chosen = self.decide(probabilities)
        truth = [labels for _, labels in validation]
        predicted = [[self.label_map.labels[j] for j in np.flatnonzero(row)] for row in chosen]
        report = classification_report(truth, predicted, probabilities, list(self.label_map.labels))
        self.training_metrics = {
            "f1": report["micro_f1"], "macro_f1": report["macro_f1"], "accuracy": report["accuracy"],
            "top1_precision": report["top1_precision"],
            "precision": float((chosen & (y_val == 1)).sum() / max(1, chosen.sum())),
            "recall": float((chosen & (y_val == 1)).sum() / max(1, y_val.sum())),
            "loss": float(calibration.binary_cross_entropy(probabilities, y_val)),
            "fusion_weight": self.fusion_weight, "train_samples": len(train),
            "validation_samples": len(validation), "train_seconds": time.perf_counter() - started,
        }
        return self.training_metrics

    # -- persistence -----------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays, lexical_values = self.lexical.state()
        arrays |= {"semantic.coef": self.semantic_coef, "semantic.intercept": self.semantic_intercept,
                   "thresholds": self.thresholds.astype(np.float32)}
        values = {"config": self.config.to_dict(), "fusion_weight": self.fusion_weight,
                  "single_label": self.single_label,
                  "platt": list(self.platt), "lexical": lexical_values}
        return arrays, values

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], values: dict, label_map: LabelMap,
                   encoder_folder: Path) -> TaxonomyClassifier:
        config = ClassifierConfig(**{**values["config"], "encoder": str(encoder_folder)})
        model = cls(config)
        model.label_map = label_map
        model.lexical = LexicalScorer.from_state(arrays, values["lexical"])
        model.semantic_coef, model.semantic_intercept = arrays["semantic.coef"], arrays["semantic.intercept"]
        model.thresholds = np.asarray(arrays["thresholds"], dtype=np.float64)
        model.fusion_weight, model.platt = float(values["fusion_weight"]), tuple(values["platt"])
        model.single_label = bool(values["single_label"])
        return model

    def save_encoder(self, folder: Path) -> None:
        """The encoder's weights (safetensors), config.json and tokenizer files (vocab.txt...)."""
        tokenizer, model = self.encoder
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        source = Path(resolve_encoder(self.config.encoder)) / "vocab.txt"
        if not (Path(folder) / "vocab.txt").is_file() and source.is_file():
            shutil.copyfile(source, Path(folder) / "vocab.txt")  # fast tokenizers save only tokenizer.json

