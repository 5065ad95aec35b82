"""The taxonomy classifier: a transformer's view and a lexical view of the text, fused and calibrated.

Semantic side: mean-pooled embeddings of the encoder (all-MiniLM-L6-v2 by
default), one logistic regression per label on top. Lexical side: TF-IDF with
a linear SVM per label. Their logits are mixed with a weight
chosen on validation, mapped to probabilities by Platt scaling fitted on
validation, and cut by per-label thresholds chosen on validation.

Two training modes (``epochs``):

- 0, the default: the encoder stays frozen, each text is encoded once (20NG's
  11,293 training documents take about 5.5 minutes at 256 tokens on 2 cores),
  and everything after that trains in seconds; fusion, calibration and
  thresholds are cross-fitted. 20NG test accuracy 0.864 (README).
- ``epochs`` > 0: the encoder's top ``tuned_layers`` are fine-tuned on cached
  lower layers (``classification.tuning``), the choices are made on a
  validation split (README: Classifier results).
"""

from __future__ import annotations

import math
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.preprocessing import MultiLabelBinarizer

from neo_ml.classification import calibration
from neo_ml.classification.lexical import LexicalScorer
from neo_ml.classification.linear import fit_per_label
from neo_ml.classification.metrics import classification_report
from neo_ml.classification.tuning import tune_top_layers
from neo_ml.data.pii import scrub
from neo_ml.data.text import LabeledText, LabelMap, augment_classification_data
from neo_ml.devices import choose_device
from neo_ml.errors import InvalidRequestError
from neo_ml.sentence_encoder import DEFAULT_ENCODER, embed, load_encoder, resolve_encoder
from neo_ml.serving import ConfigMixin, check_count, check_number, config_field

# How predictions encode text: the torch encoder (fp32, the reference), its int8 ONNX Runtime export
# (classification.onnx_encoder) or its static int8 Inductor graph (classification.int8_encoder); training
# always uses torch fp32.
INFERENCE_BACKENDS = ("torch", "onnx-int8", "torch-int8", "openvino-int8")
WARM_UP_TEXT = "A short text that warms the encoder up. "  # warm_up runs it once and a hundred times over
# What the classifier reads of a text: the longest document of 20NG, R8 and R52 has 66,536 characters, so no
# corpus figure changes; a 50 MB paste costs what 100 kB does (the scrubber and the lexical view are linear).
MAX_TEXT_CHARS = 100_000


@dataclass
class ClassifierConfig(ConfigMixin):
    """Every knob of a training run; saved with the checkpoint."""

    encoder: str = config_field(DEFAULT_ENCODER, "Hugging Face folder or name of the sentence encoder")
    max_length: int = config_field(256, "tokens per text, at least 8")
    batch_size: int = config_field(32, "texts per encoder batch")
    lexical_C: float = config_field(1.0, "C of the per-label TF-IDF LinearSVCs")
    lexical_ngrams: int = config_field(1, "what the TF-IDF view reads: 1 words, 2 words and pairs of words")
    semantic_C: float = config_field(10.0, "C of the per-label embedding logistic regressions")
    folds: int = config_field(5, "frozen encoder: cross-fitting folds that choose fusion, calibration and "
                                 "thresholds")
    augment_below: int = config_field(500, "training sets smaller than this are augmented up to it")
    epochs: int = config_field(0, "epochs of top-layer fine-tuning; 0 keeps the encoder frozen (choices "
                                  "cross-fitted), else choices are made on a validation split")
    learning_rate: float = config_field(4e-4, "fine-tuning learning rate of the tuned layers (their head: 5x)")
    bf16: bool = config_field(True, "fine-tuning: bfloat16 autocast where the CPU (or GPU) computes it natively")
    tuned_layers: int = config_field(2, "top transformer layers to fine-tune (the encoder's depth: all)")
    validation_fraction: float = config_field(0.2, "fine-tuning: the share held out to choose the epoch, "
                                                   "fusion, calibration and thresholds")
    seed: int = config_field(0, "seed of folds, splits and tuning")
    scrub_pii: bool = config_field(True, "replace e-mail addresses, phone numbers, ... before training and "
                                         "prediction")
    inference: str = config_field("torch", " | ".join(INFERENCE_BACKENDS) + "; a service can choose another at "
                                  "load time")

    def __post_init__(self):
        check_inference(self.inference)
        for name, least in (("max_length", 8), ("batch_size", 1), ("folds", 2), ("epochs", 0), ("tuned_layers", 1),
                            ("augment_below", 0), ("lexical_ngrams", 1)):
            check_count(getattr(self, name), name, least)
        for name in ("learning_rate", "lexical_C", "semantic_C"):
            check_number(getattr(self, name), name)
        check_number(self.validation_fraction, "validation_fraction", "between 0 and 1", below=1)

    def fewest_samples(self) -> int:
        """The smallest training set this configuration can split: one per fold, or a training and a
        validation sample."""
        return 2 if self.epochs else self.folds



def check_inference(inference: str) -> str:
    if inference not in INFERENCE_BACKENDS:
        raise InvalidRequestError(f"inference {inference!r}: expected one of {', '.join(INFERENCE_BACKENDS)}")
    return inference


def _normalise(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


def fold_indices(samples: list[LabeledText], folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) per fold; stratified on the first label when every class allows it."""
    first = [labels[0] for _, labels in samples]
    rows = np.arange(len(samples))
    if min(Counter(first).values()) >= folds:
        return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(rows, first))
    return list(KFold(folds, shuffle=True, random_state=seed).split(rows))


def validation_split(samples: list[LabeledText], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows); stratified on the first label when every class allows it (at
    least two samples each, and each part large enough to hold every class)."""
    first = [labels[0] for _, labels in samples]
    counts = Counter(first)
    held = math.ceil(fraction * len(samples))
    stratify = first if min(counts.values()) >= 2 and len(counts) <= min(held, len(samples) - held) else None
    fit_rows, held_rows = train_test_split(np.arange(len(samples)), test_size=fraction, random_state=seed,
                                           stratify=stratify)
    return np.sort(fit_rows), np.sort(held_rows)


class TaxonomyClassifier:
    def __init__(self, config: ClassifierConfig | None = None, embedding_cache: dict | None = None):
        """``embedding_cache`` (text -> vector) is shared by frozen-encoder models of one encoder and
        ``max_length``, such as a search's trials; a model that tunes its encoder never reads it."""
        self.config = config or ClassifierConfig()
        self.embedding_cache = embedding_cache
        self._encoder = None
        self.onnx_int8: bytes | None = None  # the int8 export (from the checkpoint, or made on first use)
        self.int8_calibration: dict[str, np.ndarray] | None = None  # torch-int8's observer statistics (fit)
        self.openvino_int8: tuple[bytes, bytes] | None = None  # openvino-int8's IR (fit, when it serves)
        self._fast_encoder = None  # the backend's encoder, built on first use

    # -- pieces ----------------------------------------------------------------------------
    @property
    def encoder(self):
        if self._encoder is None:
            tokenizer, model = load_encoder(self.config.encoder)
            self._encoder = tokenizer, model.to(choose_device())  # CUDA when present: encoding and tuning
        return self._encoder

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        cache = self.embedding_cache if not self.config.epochs else None
        if cache is None or not texts:
            return self._encode(texts, progress)
        missing = [text for text in dict.fromkeys(texts) if text not in cache]
        if missing:
            cache.update(zip(missing, self._encode(missing, progress), strict=True))
        return np.stack([cache[text] for text in texts])

    def _encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        tokenizer, model = self.encoder
        return _normalise(embed(texts, tokenizer, model, self.config.max_length, self.config.batch_size,
                                progress=progress))

    def export_onnx_int8(self) -> bytes:
        """The int8 ONNX export of this classifier's encoder, made once (about 20 s) and kept."""
        from neo_ml.classification.onnx_encoder import export_int8

        if self.onnx_int8 is None:
            self.onnx_int8 = export_int8(*self.encoder)
        return self.onnx_int8

    def inference_embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """``embed`` through the configured inference backend."""
        if self.config.inference == "torch":
            return self.embed(texts, progress)
        if self._fast_encoder is None:
            self._fast_encoder = self._build_fast_encoder()
        return _normalise(self._fast_encoder.embed(texts, self.encoder[0], self.config.max_length,
                                                   self.config.batch_size, progress=progress))

    def _build_fast_encoder(self):
        if self.config.inference == "openvino-int8":
            from neo_ml.classification.openvino_encoder import OpenVinoEncoder

            if self.openvino_int8 is None:
                raise InvalidRequestError("inference openvino-int8 needs the int8 IR that training with "
                                          "inference=openvino-int8 makes: train with it, or serve with torch, "
                                          "onnx-int8 or torch-int8")
            return OpenVinoEncoder(*self.openvino_int8)
        if self.config.inference == "onnx-int8":
            from neo_ml.classification.onnx_encoder import OnnxEncoder

            return OnnxEncoder(self.export_onnx_int8())
        from neo_ml.classification.int8_encoder import Int8Encoder

        return Int8Encoder(*self.encoder, self.int8_calibration)

    def export_openvino_int8(self, texts: list[str]) -> None:
        """The OpenVINO int8 IR of the encoder, calibrated on (a sample of) these training texts (about 16 s
        at 256 tokens)."""
        from neo_ml.classification.openvino_encoder import export_int8

        self.openvino_int8 = export_int8(*self.encoder, texts, self.config.max_length)
        self._fast_encoder = None

    def calibrate_int8(self, texts: list[str]) -> None:
        """Record the activation statistics of ``torch-int8`` on (a sample of) these training texts."""
        from neo_ml.classification.int8_encoder import calibrate

        self.int8_calibration = calibrate(*self.encoder, texts, self.config.max_length, self.config.batch_size)
        self._fast_encoder = None

    def raw_scores(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Fused per-label logits, before calibration."""
        embeddings = self.embed(texts) if embeddings is None else embeddings
        semantic = embeddings @ self.semantic_coef.T + self.semantic_intercept
        return self.fusion_weight * self.lexical.scores(texts) + (1 - self.fusion_weight) * semantic

    def prepare(self, texts: list[str]) -> list[str]:
        """The texts as the model sees them: their first ``MAX_TEXT_CHARS`` characters, personal identifiers
        replaced (``data.pii``) unless turned off."""
        texts = [text[:MAX_TEXT_CHARS] for text in texts]
        return [scrub(text) for text in texts] if self.config.scrub_pii else texts

    def predict_proba(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Calibrated probability of each label for each text (identifiers scrubbed first)."""
        texts = self.prepare(texts)
        scale, bias = self.platt
        return calibration.sigmoid(scale * self.raw_scores(texts, self.inference_embed(texts, progress)) + bias)

    def warm_up(self) -> None:
        """Run the serving path once for a short and a full-length text: the backend is built (compiled,
        for the int8 ones) and its shapes planned at load, so the first requests are as fast as later ones."""
        self.predict_proba([WARM_UP_TEXT])
        self.predict_proba([WARM_UP_TEXT * 100])

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Chosen labels: the best one only when training data had one label per text, else every
        label over its threshold (and at least the best)."""
        if self.single_label:
            chosen = np.zeros(probabilities.shape, dtype=bool)
            chosen[np.arange(len(chosen)), probabilities.argmax(axis=1)] = True
            return chosen
        return calibration.decide(probabilities, self.thresholds)

    # -- training --------------------------------------------------------------------------
    def _fit_views(self, texts: list[str], targets: np.ndarray, embeddings: np.ndarray):
        """Lexical scorer and semantic (coef, intercept) fitted on one training set."""
        if len(texts) < self.config.augment_below:  # small data only; callers pass training parts
            originals = [(t, [str(j) for j in np.flatnonzero(row)]) for t, row in zip(texts, targets, strict=True)]
            augmented = augment_classification_data(originals, self.config.augment_below, seed=self.config.seed)
            texts = [t for t, _ in augmented]
            targets = np.array([[str(j) in labels for j in range(targets.shape[1])] for _, labels in augmented],
                               dtype=int)
            known = dict(zip([t for t, _ in originals], embeddings, strict=True))
            new = [t for t in texts if t not in known]
            known |= dict(zip(new, self.embed(new), strict=True)) if new else {}
            embeddings = np.stack([known[t] for t in texts])
        lexical = LexicalScorer(C=self.config.lexical_C, ngrams=self.config.lexical_ngrams).fit(texts, targets)
        semantic = fit_per_label(embeddings, targets,
                                 lambda: LogisticRegression(C=self.config.semantic_C, max_iter=3000))
        return lexical, semantic, len(texts)

    def fit(self, samples: list[LabeledText], progress: bool = False,
            on_epoch: Callable[[dict], None] | None = None) -> dict:
        """Train on ``samples``; fusion weight, calibration and thresholds are chosen on held-out scores.

        Frozen encoder (``epochs=0``): cross-fitting. Every sample is scored once
        by models trained on the other folds, so the choices and the reported
        metrics use data the scoring model never saw, and the final models
        still train on all of it. Tuned encoder: the top layers train on one
        part and the choices and metrics come from the validation part, which
        the tuned encoder never saw. Small data is augmented inside training
        parts only. Returns the held-out metrics: f1 (micro), precision,
        recall, loss (BCE of the calibrated probabilities), accuracy, macro_f1,
        top1_precision. ``on_epoch`` gets each tuning epoch's record (a search's pruner).
        """
        config, started = self.config, time.perf_counter()
        if len(samples) < config.fewest_samples():
            why = "a training and a validation sample" if config.epochs else f"one per fold, folds={config.folds}"
            raise InvalidRequestError(f"{len(samples)} training sample(s): at least {config.fewest_samples()} "
                                      f"are needed ({why})")
        samples = list(zip(self.prepare([text for text, _ in samples]), [labels for _, labels in samples],
                           strict=True))
        self.label_map = LabelMap.from_samples(samples)
        self.single_label = all(len(labels) == 1 for _, labels in samples)
        binarizer = MultiLabelBinarizer(classes=list(self.label_map.labels))
        targets = binarizer.fit_transform([labels for _, labels in samples])
        texts = [text for text, _ in samples]
        tuning = None
        if config.epochs:
            folds = [validation_split(samples, config.validation_fraction, config.seed)]
            embeddings, tuning = tune_top_layers(
                texts, targets, *folds[0], *self.encoder, layers=config.tuned_layers, epochs=config.epochs,
                learning_rate=config.learning_rate, max_length=config.max_length, batch_size=config.batch_size,
                seed=config.seed, single_label=self.single_label, bf16=config.bf16, progress=progress,
                on_epoch=on_epoch)
            embeddings = _normalise(embeddings)
        else:
            folds = fold_indices(samples, config.folds, config.seed)
            embeddings = self.embed(texts, progress)

        lexical_held = np.zeros(targets.shape)
        semantic_held = np.zeros(targets.shape)
        for fit_rows, held_rows in folds:
            lexical, (coef, intercept), _ = self._fit_views(
                [texts[i] for i in fit_rows], targets[fit_rows], embeddings[fit_rows])
            lexical_held[held_rows] = lexical.scores([texts[i] for i in held_rows])
            semantic_held[held_rows] = embeddings[held_rows] @ coef.T + intercept
        held = np.sort(np.concatenate([rows for _, rows in folds]))
        lexical_held, semantic_held, held_targets = lexical_held[held], semantic_held[held], targets[held]

        weights = np.linspace(0, 1, 21)
        top1 = [calibration.top1_hits(w * lexical_held + (1 - w) * semantic_held, held_targets).mean()
                for w in weights]
        self.fusion_weight = float(weights[int(np.argmax(top1))])
        fused = self.fusion_weight * lexical_held + (1 - self.fusion_weight) * semantic_held
        self.platt = calibration.fit_platt(fused, held_targets)
        probabilities = calibration.sigmoid(self.platt[0] * fused + self.platt[1])
        self.thresholds = calibration.choose_thresholds(probabilities, held_targets)
        self.lexical, (self.semantic_coef, self.semantic_intercept), fitted = self._fit_views(
            texts, targets, embeddings)
        self.calibrate_int8(texts)  # about 10 s at 256 tokens; lets the checkpoint serve through torch-int8 too
        if config.inference == "openvino-int8":
            self.export_openvino_int8(texts)

        chosen = self.decide(probabilities)
        predicted = [[self.label_map.labels[j] for j in np.flatnonzero(row)] for row in chosen]
        report = classification_report([samples[i][1] for i in held], predicted, probabilities,
                                       list(self.label_map.labels))
        hits = (chosen & (held_targets == 1)).sum()
        self.training_metrics = {
            "f1": report["micro_f1"], "macro_f1": report["macro_f1"], "accuracy": report["accuracy"],
            "top1_precision": report["top1_precision"],
            "precision": float(hits / max(1, chosen.sum())), "recall": float(hits / max(1, held_targets.sum())),
            "loss": calibration.binary_cross_entropy(probabilities, held_targets),
            "fusion_weight": self.fusion_weight, "samples": len(samples), "held_out_samples": len(held),
            "train_samples": fitted, "protocol": "validation split" if tuning else f"{config.folds}-fold cross-fit",
            "train_seconds": time.perf_counter() - started,
        }
        self.history = tuning.epochs if tuning else []  # per tuning epoch: losses and validation figures
        if tuning:
            self.training_metrics |= {"tuning_epochs": tuning.epochs, "best_epoch": tuning.best_epoch,
                                      "tuning_seconds": tuning.seconds, "tuning_precision": tuning.precision}
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
        # Checkpoints before lexical_ngrams read words only.
        config = ClassifierConfig(**{"lexical_ngrams": 1, **values["config"], "encoder": str(encoder_folder)})
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

