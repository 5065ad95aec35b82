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

from neo_ml.checkpoints import file_sha256
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


def evaluate(model: TaxonomyClassifier, test, progress: bool = False) -> dict:
    texts = [text for text, _ in test]
    started = time.perf_counter()
    probabilities = model.predict_proba(texts, model.embed(texts, progress))
    chosen = model.decide(probabilities)
    predicted = [[model.label_map.labels[j] for j in np.flatnonzero(row)] for row in chosen]
    report = classification_report([labels for _, labels in test], predicted, probabilities,
                                   list(model.label_map.labels))
    return {**report, "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neo_ml.train_classification",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help=" | ".join(CORPORA) + " | FILE.json")
    parser.add_argument("--output", required=True, type=Path, help="checkpoint folder")
    defaults = ClassifierConfig()
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="Hugging Face folder or name")
    parser.add_argument("--max-length", type=int, default=defaults.max_length)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--folds", type=int, default=defaults.folds,
                        help="cross-fitting folds that choose fusion, calibration and thresholds")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def body() -> dict:
        if args.max_length <= 0 or args.batch_size <= 0 or args.folds < 2:
            raise NeoMLError("--max-length and --batch-size must be positive, --folds at least 2")
        train, test, checksum = load_training_data(args.data)
        config = ClassifierConfig(encoder=args.encoder, max_length=args.max_length, batch_size=args.batch_size,
                                  folds=args.folds, seed=args.seed)
        model = TaxonomyClassifier(config)
        metrics = {f"oof_{k}": v for k, v in model.fit(train, progress=not args.no_progress).items()}
        if test is not None:
            metrics |= {f"test_{k}": v for k, v in evaluate(model, test, not args.no_progress).items()}
        save_classifier(model, args.output, metrics, checksum)
        return {"output": str(args.output), "data": args.data, **metrics}

    return run_command(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
