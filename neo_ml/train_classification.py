"""Train the taxonomy classifier and save a checkpoint folder MLClassificationService serves.

    python -m neo_ml.train_classification --data 20ng --output models/classification/benchmark_v1
    python -m neo_ml.train_classification --data samples.json --output models/classification/production_v1

``--data`` is ``20ng``, ``20ng-dewey``, ``r8``, ``r52`` (train on the train file,
report on the test file) or a classification JSON file (seed or backend
format; out-of-fold metrics only). Fusion weight, calibration and thresholds
are chosen on out-of-fold scores of the training data (cross-fitting). The final
metrics are printed to stdout as one JSON line; exit 1 with a one-line
message on bad input (``--debug`` for a traceback).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.preprocessing import MultiLabelBinarizer

from neo_ml.checkpoints import file_sha256
from neo_ml.classification import calibration
from neo_ml.classification.checkpoint import save_classifier
from neo_ml.classification.encoder import DEFAULT_ENCODER
from neo_ml.classification.metrics import classification_report
from neo_ml.classification.model import ClassifierConfig, TaxonomyClassifier
from neo_ml.cli import run_command
from neo_ml.data.corpora import TEXT_CHECKSUMS, TEXT_CORPORA, load_text_corpus
from neo_ml.data.text import read_classification_json
from neo_ml.errors import NeoMLError

CORPORA = [*TEXT_CORPORA, "20ng-dewey"]


def load_training_data(spec: str):
    """(train, test or None, data checksum) for a corpus name or a JSON file."""
    if spec in CORPORA:
        train, test = load_text_corpus(spec)
        stem = TEXT_CORPORA["20ng" if spec == "20ng-dewey" else spec]
        return train, test, TEXT_CHECKSUMS[f"{stem}-train.tab"]
    if Path(spec).suffix == ".json":
        return read_classification_json(spec).samples, None, file_sha256(spec)
    raise NeoMLError(f"--data {spec!r}: expected one of {CORPORA} or a .json file")


def evaluate(model: TaxonomyClassifier, test, progress: bool = False, probabilities: np.ndarray | None = None) -> dict:
    """Test metrics, and how often the top-1 prediction is right per confidence bin.

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
    correct = calibration.top1_hits(probabilities, MultiLabelBinarizer(classes=labels).fit_transform(truth))
    confident = confidence >= 0.9
    return {**report, "confident_share": float(confident.mean()),
            "confident_accuracy": float(correct[confident].mean()) if confident.any() else float("nan"),
            "reliability": calibration.reliability_table(confidence, correct),
            **({"seconds": seconds} if scored_here else {})}  # scoring time, when it was scored here


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neo_ml.train_classification",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help=" | ".join(CORPORA) + " | FILE.json")
    parser.add_argument("--output", required=True, type=Path, help="checkpoint folder")
    defaults = ClassifierConfig()
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="Hugging Face folder or name")
    parser.add_argument("--max-length", type=int, default=defaults.max_length)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help="epochs of top-layer fine-tuning; 0 keeps the encoder frozen")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--tuned-layers", type=int, default=defaults.tuned_layers,
                        help="top transformer layers to fine-tune (the encoder's depth: all of them)")
    parser.add_argument("--folds", type=int, default=defaults.folds,
                        help="frozen encoder: cross-fitting folds that choose fusion, calibration and thresholds")
    parser.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction,
                        help="fine-tuning: the share held out to choose the epoch, fusion, calibration, thresholds")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def body() -> dict:
        if min(args.max_length, args.batch_size, args.learning_rate, args.tuned_layers) <= 0 or args.epochs < 0:
            raise NeoMLError("--max-length, --batch-size, --learning-rate, --tuned-layers must be positive, "
                             "--epochs at least 0")
        if args.folds < 2 or not 0 < args.validation_fraction < 1:
            raise NeoMLError("--folds must be at least 2 and --validation-fraction between 0 and 1")
        train, test, checksum = load_training_data(args.data)
        config = ClassifierConfig(encoder=args.encoder, max_length=args.max_length, batch_size=args.batch_size,
                                  epochs=args.epochs, learning_rate=args.learning_rate,
                                  tuned_layers=args.tuned_layers, folds=args.folds,
                                  validation_fraction=args.validation_fraction, seed=args.seed)
        model = TaxonomyClassifier(config)
        metrics = {f"validation_{k}": v for k, v in model.fit(train, progress=not args.no_progress).items()}
        if test is not None:
            metrics |= {f"test_{k}": v for k, v in evaluate(model, test, not args.no_progress).items()}
        save_classifier(model, args.output, metrics, checksum)
        return {"output": str(args.output), "data": args.data, **metrics}

    return run_command(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
