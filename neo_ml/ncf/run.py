"""One training run, start to finish: split, train, evaluate, save (``run_training``), or the same
under torchrun with several DDP processes (``run_distributed``).

MovieLens-100k is split NCF-LOO (last item test, previous validation). A JSON
file or a database keeps each user's last item for validation and trains on
the rest; a JSON file's ``held_out_test`` is only evaluated, never used to
choose epochs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from neo_ml.data.splits import LeaveOneOutSplit, leave_one_out_split
from neo_ml.devices import Ranks, choose_device
from neo_ml.errors import NeoMLError
from neo_ml.ncf.checkpoint import load_ncf_checkpoint, model_from_checkpoint, save_trained
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.data import TrainingData, item_text_vectors
from neo_ml.ncf.evaluate import evaluate_held_out, evaluate_model
from neo_ml.ncf.train import TrainResult, remove_training_state, train_ncf_model
from neo_ml.tracking import NCF_MODEL, Tracker, track_training


def _texts_digest(texts) -> str:
    """Part of a run's fingerprint: a resumed run must read the same item texts."""
    return "no texts" if texts is None else hashlib.sha256(texts.tobytes()).hexdigest()[:16]


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
    reads_text = config.item_text and config.is_sequence_model
    texts = item_text_vectors(data, split.items.ids) if reads_text else None
    result = train_ncf_model(split, config, progress=progress, state_path=state, resume=resume,
                             fingerprint=f"{data.checksum}:{split_seed}:{_texts_digest(texts)}", ranks=ranks,
                             item_text=texts)
    if not ranks.is_main:
        return {}, result, split
    metrics: dict = {"best_epoch": result.best_epoch, "train_seconds": round(result.train_seconds, 2),
                     "processes": ranks.world_size, "device": str(ranks.device), **result.validation_metrics}
    if data.hold_out_test:
        metrics |= {f"test_{k}": v for k, v in evaluate_model(result.model, split, "test").items()}
    if data.held_out_test:
        history = split.history_for("test", result.model.history_length) if config.history_length else None
        metrics |= evaluate_held_out(result.model, data.held_out_test, split.users, split.items, history)
    save_trained(output, result, split, metrics, data.checksum, data.name)
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


def track_run(tracker: Tracker, data: TrainingData, config: NCFConfig, split_seed: int, result: TrainResult,
              metrics: dict, output: Path) -> str | None:
    """A finished ``run_training`` into ``tracker``: its config, data and split, curves, figures and
    checkpoint, registered as a version of ``neo-ml-ncf``."""
    from neo_ml.files import checksum_path

    return track_training(tracker, NCF_MODEL, {"config": config.to_dict(), "data": data.name,
                                               "data_checksum": data.checksum, "split_seed": split_seed},
                          result.history, metrics, [output, checksum_path(output)])


def run_distributed(data: TrainingData, config: NCFConfig, output: Path, processes: int,
                    split_seed: int = 2017) -> tuple[dict, TrainResult, LeaveOneOutSplit]:
    """``run_training`` with ``processes`` DDP ranks under torchrun (for notebooks and scripts; untracked: the
    caller, e.g. the pipeline, tracks its own run).

    torchrun runs ``neo_ml.commands.train_ncf``; the checkpoint it writes gives the model and history back.
    """
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
               "-m", "neo_ml.commands.train_ncf", "--data", data.source, "--output", str(output),
               "--split-seed", str(split_seed), "--no-progress", "--no-tracking", *config_arguments(config)]
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
