"""MLClassificationService: trains and serves the taxonomy classifier.

    service = MLClassificationService(model_version="benchmark_v1")
    service.fine_tune([("text", ["000", "600"]), ...])       # validation metrics
    service.predict("a resource's text", top_k=5)           # ranked (code, confidence), best first
    MLClassificationService(inference="onnx-int8")          # the int8 ONNX Runtime encoder (classification.model)
    MLClassificationService(inference="torch-int8")         # static int8 compiled by Inductor
    MLClassificationService(inference="openvino-int8")      # OpenVINO IR quantised by NNCF, the fastest

Checkpoints live in ``models/classification/<model_version>/`` (or
``model_path``); they are loaded lazily, verified against their manifest,
and cached.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neo_ml import paths
from neo_ml.classification.checkpoint import is_plain_name, load_classifier, save_classifier
from neo_ml.classification.model import ClassifierConfig, TaxonomyClassifier, check_inference
from neo_ml.data.documents import unicode_problem
from neo_ml.data.pii import scrub
from neo_ml.data.text import LabeledText, parse_sample
from neo_ml.errors import ClassifierNotFoundError, InvalidRequestError, brief
from neo_ml.files import recover_folder
from neo_ml.sentence_encoder import DEFAULT_ENCODER
from neo_ml.serving import RateLimiter, admit, check_list, check_top_k, log_prediction
from neo_ml.tracking import fetch_model

log = logging.getLogger(__name__)
_DEFAULTS = ClassifierConfig()


def _labeled_samples(labeled_data) -> list[LabeledText]:
    """(text, labels) pairs checked like a file's samples; a bad one is named by its position."""
    samples = []
    for n, pair in enumerate(check_list(labeled_data, "labeled_data", "(text, labels) pairs")):
        if isinstance(pair, str | bytes) or not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InvalidRequestError(f"labeled_data, record {n}: expected a (text, labels) pair, got {brief(pair)}")
        samples.append(parse_sample({"text": pair[0], "taxonomy_codes": pair[1]}, "labeled_data", n))
    if not samples:
        raise InvalidRequestError("labeled_data is empty")
    return samples


@dataclass
class Prediction:
    taxonomy_code: str
    confidence: float
    rank: int
    selected: bool  # over the label's threshold (the best label is always selected)


@dataclass
class ClassificationResult:
    predictions: list[Prediction] = field(default_factory=list)
    model_version: str = ""
    inference_time_ms: float = 0.0

    @property
    def codes(self) -> list[str]:
        return [p.taxonomy_code for p in self.predictions if p.selected]

    def to_dict(self) -> dict:
        return asdict(self)


class MLClassificationService:
    def __init__(self, db=None, model_name: str = DEFAULT_ENCODER, model_version: str = "benchmark_v1",
                 model_path: str | Path | None = None, rate_limiter: RateLimiter | None = None,
                 inference: str | None = None, model_uri: str | None = None, tracking_uri: str | None = None):
        """``inference``: the encoder backend for predictions; None keeps the one saved in the checkpoint.
        ``model_uri`` (``models:/neo-ml-classifier@production``): a registered version, fetched from the MLflow
        store (``tracking_uri``) and verified against its manifest as any folder."""
        self.db = db  # kept for the backend's signature; the classifier reads no tables
        if model_path is None and not is_plain_name(model_version):
            raise InvalidRequestError(f"model_version must be a folder name such as 'benchmark_v1', "
                                      f"got {brief(model_version)}; give model_path for a folder elsewhere")
        if model_path is not None and not isinstance(model_path, str | Path):
            raise InvalidRequestError(f"model_path must be a path, got {type(model_path).__name__}")
        if rate_limiter is not None and not isinstance(rate_limiter, RateLimiter):
            raise InvalidRequestError(f"rate_limiter must be a RateLimiter, got {type(rate_limiter).__name__}")
        if model_uri is not None:
            if model_path is not None:
                raise InvalidRequestError("give model_path or model_uri, not both")
            model_path = fetch_model(model_uri, tracking_uri)
        self.model_name, self.model_version = model_name, model_version
        self.checkpoint_dir = Path(model_path) if model_path else paths.classification_models_dir() / model_version
        self.model: TaxonomyClassifier | None = None
        self.rate_limiter = rate_limiter
        self.inference = check_inference(inference) if inference is not None else None
        self._lock = threading.Lock()

    def _load_model(self) -> TaxonomyClassifier:
        if self.model is None:
            with self._lock:
                if self.model is None:
                    recover_folder(self.checkpoint_dir)
                    if not self.checkpoint_dir.is_dir():
                        raise ClassifierNotFoundError(self.checkpoint_dir)
                    model = load_classifier(self.checkpoint_dir, self.inference)
                    model.warm_up()  # the first requests then run as fast as the later ones
                    self.model = model
                    log.info("Loaded classifier %s from %s", self.model_version, self.checkpoint_dir)
        return self.model

    @property
    def labels(self) -> list[str]:
        """The taxonomy codes the served model knows, in its column order."""
        return list(self._load_model().label_map.labels)

    def fine_tune(self, labeled_data: list[LabeledText], config: ClassifierConfig | None = None,
                  progress: bool = False, **changes) -> dict[str, float]:
        """Train on (text, labels) pairs and save to the checkpoint folder; returns held-out metrics.

        ``config`` (default: ``ClassifierConfig`` with this service's encoder and
        inference backend) with any of its fields changed by keyword, e.g.
        ``fine_tune(pairs, epochs=3, learning_rate=4e-4)``. ``epochs=0`` keeps the
        encoder frozen (choices cross-fitted over ``folds``); otherwise its top
        ``tuned_layers`` are fine-tuned and the epoch, fusion, calibration and
        thresholds are chosen on a validation split (see ``classification.model``).
        A failed run leaves the previous checkpoint in place.
        """
        samples = _labeled_samples(labeled_data)
        base = config or ClassifierConfig(encoder=self.model_name, inference=self.inference or _DEFAULTS.inference)
        config = ClassifierConfig.from_mapping({**base.to_dict(), **changes}, "fine_tune")
        model = TaxonomyClassifier(config)
        metrics = model.fit(samples, progress=progress)
        save_classifier(model, self.checkpoint_dir, metrics)
        self.model = load_classifier(self.checkpoint_dir, self.inference)
        return metrics

    def predict(self, text: str, top_k: int = 5, caller: str | None = None) -> ClassificationResult:
        return self._predict([text], top_k, caller, "predict")[0]

    def predict_batch(self, texts: list[str], top_k: int = 5, caller: str | None = None) -> list[ClassificationResult]:
        """Ranked predictions for each text, best first, with calibrated confidences."""
        return self._predict(texts, top_k, caller, "predict_batch")

    def _predict(self, texts: list[str], top_k: int, caller: str | None, call: str) -> list[ClassificationResult]:
        check_top_k(top_k)
        if isinstance(texts, str | bytes) or not isinstance(texts, list | tuple):
            raise InvalidRequestError(f"texts must be a list of strings, got {type(texts).__name__}")
        for n, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                shown = brief(scrub(text[:200])) if isinstance(text, str) else type(text).__name__
                raise InvalidRequestError(f"text {n}: expected a non-empty string, got {shown}")
            problem = unicode_problem(text)
            if problem:
                raise InvalidRequestError(f"text {n}: {problem}")
        started = admit(self.rate_limiter, caller)
        if not texts:
            return []
        model = self._load_model()
        probabilities = model.predict_proba(list(texts))
        selected = model.decide(probabilities)
        elapsed_ms = (time.perf_counter() - started) * 1e3 / max(1, len(texts))
        results = []
        for row, chosen in zip(probabilities, selected, strict=True):
            best = np.argsort(-row, kind="stable")[:top_k]
            results.append(ClassificationResult(
                [Prediction(model.label_map.labels[j], float(row[j]), rank, bool(chosen[j]))
                 for rank, j in enumerate(best, start=1)], self.model_version, elapsed_ms))
        log_prediction(call, started, len(texts))
        return results
