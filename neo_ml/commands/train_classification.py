"""Train the taxonomy classifier and save a checkpoint folder MLClassificationService serves.

    python -m neo_ml.train_classification --data 20ng --output models/classification/benchmark_v1
    python -m neo_ml.train_classification --data samples.json --output models/classification/production_v1

``--data`` is ``20ng``, ``20ng-dewey``, ``r8``, ``r52`` (train on the train file,
report on the test file) or a classification JSON file (seed or backend
format; out-of-fold metrics only). Every ``ClassifierConfig`` field is a flag,
checked by its ``__post_init__``; the run is ``classification.run.train_classifier``.
The final metrics are printed to stdout as one JSON line; exit 1 with a
one-line message on bad input (``--debug`` for a traceback).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from neo_ml.classification.data import CORPORA
from neo_ml.classification.model import ClassifierConfig
from neo_ml.classification.run import train_classifier
from neo_ml.commands import build_parser, config_from, run_command
from neo_ml.tracking import Tracker


@dataclass
class RunArguments:
    data: str = field(metadata={"help": " | ".join(CORPORA) + " | FILE.json"})
    output: Path = field(metadata={"help": "checkpoint folder"})
    tracking_uri: str | None = field(default=None, metadata={
        "help": "MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db)"})
    no_tracking: bool = field(default=False, metadata={"help": "log nothing to MLflow"})
    no_progress: bool = field(default=False, metadata={"help": "no progress bars"})
    debug: bool = field(default=False, metadata={"help": "show tracebacks"})


def main(argv: list[str] | None = None) -> int:
    parser = build_parser("python -m neo_ml.train_classification", __doc__, RunArguments, ClassifierConfig)
    args = parser.parse_args(argv)

    def body() -> dict:
        config = config_from(args, ClassifierConfig)
        tracker = Tracker(args.tracking_uri, enabled=not args.no_tracking).start(
            f"train_classification {args.output.name}")
        metrics = train_classifier(args.data, config, args.output, progress=not args.no_progress, tracker=tracker)
        return {"output": str(args.output), "data": args.data, **metrics}

    return run_command(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
