"""Train an NCF recommender and save a checkpoint NCFService can serve.

    python -m neo_ml.train_ncf --data ml-100k --output models/ncf_benchmark_v1.pt
    python -m neo_ml.train_ncf --data interactions.json --output model.pt
    python -m neo_ml.train_ncf --data sqlite:///data/neo_alexandria.db --output model.pt
    torchrun --nproc_per_node=2 -m neo_ml.train_ncf --data ml-100k --output model.pt

MovieLens-100k is split NCF-LOO (last item test, previous validation). A JSON
file or a database keeps each user's last item for validation and trains on
the rest; a JSON file's ``held_out_test`` is only evaluated, never used to
choose epochs. The final metrics are printed to stdout as one JSON line.

Under torchrun every process loads the data and builds the same split, trains
its shard with DistributedDataParallel (``distributed.Ranks``), and rank 0
alone evaluates, writes the checkpoint and prints the metrics.
Exit status 1 with a one-line message on bad input (``--debug`` for a traceback).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd
import torch

from neo_ml.checkpoints import file_sha256
from neo_ml.cli import run_command
from neo_ml.data import db as database
from neo_ml.data.corpora import ML100K_CHECKSUM, load_movielens_100k
from neo_ml.data.interactions import HeldOutCase, interactions_checksum, read_interactions_json
from neo_ml.data.splits import LeaveOneOutSplit, leave_one_out_split
from neo_ml.distributed import Ranks, choose_device
from neo_ml.errors import NeoMLError, brief
from neo_ml.ncf.checkpoint import load_ncf_checkpoint, model_from_checkpoint, save_ncf_checkpoint
from neo_ml.ncf.evaluate import evaluate_held_out, evaluate_model
from neo_ml.ncf.train import NCFConfig, TrainResult, remove_training_state, train_ncf_model


@dataclass
class TrainingData:
    interactions: pd.DataFrame
    source: str
    checksum: str
    hold_out_test: bool
    held_out_test: list[HeldOutCase] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The source as checkpoints and output show it: a database URL without its password."""
        return database.redact_url(self.source) if database.is_database_url(self.source) else self.source


def load_training_data(spec: str) -> TrainingData:
    """``ml-100k``, a JSON file, or a database URL -> interactions with their provenance."""
    if spec == "ml-100k":
        return TrainingData(load_movielens_100k(), "ml-100k", ML100K_CHECKSUM, hold_out_test=True)
    if spec.endswith(".json") or Path(spec).suffix == ".json":
        dataset = read_interactions_json(spec)
        return TrainingData(dataset.interactions, str(spec), file_sha256(spec), hold_out_test=False,
                            held_out_test=dataset.held_out_test)
    if database.is_database_url(spec):
        frame = database.read_interactions(database.connect(spec, create=False))
        return TrainingData(frame, spec, interactions_checksum(frame), hold_out_test=False)
    raise NeoMLError(f"--data {brief(spec)}: expected 'ml-100k', a .json file or a database URL")


SELECT_METRICS = ("ndcg@10", "hr@10", "ndcg@10_full", "hr@10_full")


def training_state_path(output: Path) -> Path:
    """Where an interrupted run's state waits for ``--resume``: beside the checkpoint."""
    return Path(output).with_name(Path(output).stem + ".state.pt")


def run_training(data: TrainingData, config: NCFConfig, output: Path, split_seed: int = 2017,
                 progress: bool = True, resume: bool = False,
                 ranks: Ranks | None = None) -> tuple[dict, TrainResult, LeaveOneOutSplit]:
    """Split, train (saving the state each epoch), evaluate and save; returns the final metrics.

    Under torchrun only rank 0 evaluates and saves; the other ranks return empty metrics.
    """
    split = leave_one_out_split(data.interactions, seed=split_seed, hold_out_test=data.hold_out_test)
    state = training_state_path(output)
    ranks = ranks or Ranks(device=choose_device(config.device))
    result = train_ncf_model(split, config, progress=progress, state_path=state, resume=resume,
                             fingerprint=f"{data.checksum}:{split_seed}", ranks=ranks)
    if not ranks.is_main:
        return {}, result, split
    metrics: dict = {"best_epoch": result.best_epoch, "train_seconds": round(result.train_seconds, 2),
                     "processes": ranks.world_size, "device": str(ranks.device), **result.validation_metrics}
    if data.hold_out_test:
        metrics |= {f"test_{k}": v for k, v in evaluate_model(result.model, split, "test").items()}
    if data.held_out_test:
        history = split.history_for("test", result.model.history_length) if config.history_length else None
        metrics |= evaluate_held_out(result.model, data.held_out_test, split.users, split.items, history)
    save_ncf_checkpoint(output, result.model.cpu(), config.to_dict(), split.users, split.items, split.all_pairs(),
                        metrics, result.history, data.checksum, data.name)
    remove_training_state(state)
    return metrics, result, split


def config_arguments(config: NCFConfig) -> list[str]:
    """Command-line flags that give ``config`` back (``build_parser`` has one per NCFConfig field)."""
    arguments = []
    for name, value in config.to_dict().items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            arguments += [flag] if value else []
        elif isinstance(value, list):
            arguments += [flag, *map(str, value)]
        elif value is not None:
            arguments += [flag, str(value)]
    return arguments


def run_distributed(data: TrainingData, config: NCFConfig, output: Path, processes: int,
                    split_seed: int = 2017) -> tuple[dict, TrainResult, LeaveOneOutSplit]:
    """``run_training`` with ``processes`` DDP ranks under torchrun (for notebooks and scripts).

    torchrun runs this module; the checkpoint it writes gives the model and history back.
    """
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
               "-m", "neo_ml.train_ncf", "--data", data.source, "--output", str(output),
               "--split-seed", str(split_seed), "--no-progress", *config_arguments(config)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        raise NeoMLError(f"torchrun with {processes} processes failed (exit {done.returncode}): "
                         + (errors[0] if errors else done.stderr[-2000:]))
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    checkpoint = load_ncf_checkpoint(output)
    result = TrainResult(model_from_checkpoint(checkpoint), config, checkpoint["training_history"],
                         metrics["best_epoch"], {k: v for k, v in metrics.items() if k.startswith("val_")},
                         metrics["train_seconds"])
    split = leave_one_out_split(data.interactions, seed=split_seed, hold_out_test=data.hold_out_test)
    return metrics, result, split


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neo_ml.train_ncf", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="ml-100k | FILE.json | DATABASE_URL")
    parser.add_argument("--output", required=True, type=Path, help="checkpoint path (.pt)")
    defaults = NCFConfig()
    parser.add_argument("--architecture", choices=["neumf", "mlp", "gmf"], default=defaults.architecture)
    parser.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim)
    parser.add_argument("--gmf-dim", type=int, default=defaults.gmf_dim, help="neumf: default the embedding dim")
    parser.add_argument("--hidden-layers", type=int, nargs="+", default=defaults.hidden_layers)
    parser.add_argument("--history-length", type=int, default=defaults.history_length,
                        help="latest items added to the user vector; 0 = the plain model")
    parser.add_argument("--dropout", type=float, default=defaults.dropout)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", "--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--num-negatives", type=int, default=defaults.num_negatives)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--select-metric", default=defaults.select_metric,
                        help="validation metric that picks the epoch: ndcg@10, hr@10, ndcg@10_full, ...")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--split-seed", type=int, default=2017, help="seed of the evaluation negatives")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (per process)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N; default: CUDA when present")
    parser.add_argument("--sparse", action="store_true",
                        help="sparse embedding gradients with SparseAdam (large catalogues)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from OUTPUT's .state.pt (written after every epoch)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    positive = ["embedding_dim", "epochs", "batch_size", "num_negatives", "patience"]
    for name in positive:
        if getattr(args, name) <= 0:
            raise NeoMLError(f"--{name.replace('_', '-')} must be positive")
    if args.learning_rate <= 0 or args.history_length < 0 or not 0 <= args.dropout < 1:
        raise NeoMLError("--learning-rate must be > 0, --history-length >= 0, 0 <= --dropout < 1")
    if any(width <= 0 for width in args.hidden_layers) or (args.gmf_dim is not None and args.gmf_dim <= 0):
        raise NeoMLError("--hidden-layers and --gmf-dim must be positive widths")
    if args.select_metric not in SELECT_METRICS:
        raise NeoMLError(f"--select-metric must be one of {', '.join(SELECT_METRICS)}")
    if args.output.is_dir():
        raise NeoMLError(f"--output {args.output} is a folder; give a file path")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> dict:
        _check_args(args)
        if args.threads:
            torch.set_num_threads(args.threads)
        config = NCFConfig(**{f.name: getattr(args, f.name) for f in fields(NCFConfig) if hasattr(args, f.name)})
        ranks = Ranks.from_environment(config.device)
        try:
            data = load_training_data(args.data)
            metrics, _, _ = run_training(data, config, args.output, args.split_seed,
                                         progress=not args.no_progress, resume=args.resume, ranks=ranks)
        finally:
            ranks.close()
        return {"output": str(args.output), "data": data.name, **metrics} if ranks.is_main else None

    return run_command(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
