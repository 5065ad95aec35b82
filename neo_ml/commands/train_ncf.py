"""Train an NCF recommender and save a checkpoint NCFService can serve.

    python -m neo_ml.train_ncf --data ml-100k --output models/ncf_benchmark_v1.pt
    python -m neo_ml.train_ncf --data interactions.json --output model.pt
    python -m neo_ml.train_ncf --data sqlite:///data/neo_alexandria.db --output model.pt
    torchrun --nproc_per_node=2 -m neo_ml.train_ncf --data ml-100k --output model.pt

Every ``NCFConfig`` field is a flag (``--embedding-dim 32``, ``--hidden-layers
64 32``), made from the dataclass by ``HfArgumentParser`` and checked by
``NCFConfig.__post_init__``, as in a notebook or the pipeline YAML. The run
itself is ``ncf.run.run_training``; the final metrics are printed to stdout
as one JSON line. The run is logged to MLflow (``neo_ml.tracking``: config, curves, metrics, the
checkpoint as a new version of ``neo-ml-ncf``) unless ``--no-tracking``.

Under torchrun every process loads the data and builds the same split, trains
its shard with DistributedDataParallel (``devices.Ranks``), and rank 0
alone evaluates, writes the checkpoint and prints the metrics.
Exit status 1 with a one-line message on bad input (``--debug`` for a traceback).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from neo_ml.commands import build_parser, config_from, run_command
from neo_ml.devices import Ranks
from neo_ml.errors import NeoMLError
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.data import load_training_data
from neo_ml.ncf.run import run_training, track_run
from neo_ml.tracking import Tracker


@dataclass
class RunArguments:
    """What a run needs besides the model's config."""

    data: str = field(metadata={"help": "ml-100k | FILE.json | DATABASE_URL"})
    output: Path = field(metadata={"help": "checkpoint path (.pt)"})
    split_seed: int = field(default=2017, metadata={"help": "seed of the evaluation negatives"})
    resume: bool = field(default=False, metadata={
        "help": "continue an interrupted run from OUTPUT's .state.pt (written after every epoch)"})
    tracking_uri: str | None = field(default=None, metadata={
        "help": "MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db)"})
    no_tracking: bool = field(default=False, metadata={"help": "log nothing to MLflow"})
    no_progress: bool = field(default=False, metadata={"help": "no progress bar"})
    debug: bool = field(default=False, metadata={"help": "show tracebacks"})


def make_parser():
    """One flag per field of ``RunArguments`` and of ``NCFConfig``."""
    return build_parser("python -m neo_ml.train_ncf", __doc__, RunArguments, NCFConfig)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)

    def body() -> dict:
        config = config_from(args, NCFConfig)
        if args.output.is_dir():
            raise NeoMLError(f"--output {args.output} is a folder; give a file path")
        if config.threads:
            torch.set_num_threads(config.threads)
        ranks = Ranks.from_environment(config.device)
        try:
            data = load_training_data(args.data)
            metrics, result, _ = run_training(data, config, args.output, args.split_seed,
                                              progress=not args.no_progress, resume=args.resume, ranks=ranks)
        finally:
            ranks.close()
        if not ranks.is_main:
            return None
        tracker = Tracker(args.tracking_uri, enabled=not args.no_tracking).start(f"train_ncf {args.output.name}")
        track_run(tracker, data, config, args.split_seed, result, metrics, args.output)
        return {"output": str(args.output), "data": data.name, **metrics}

    return run_command(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
