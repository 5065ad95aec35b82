"""Training loop for the NCF family: read it top to bottom.

Each epoch streams batches of shuffled positives, each with ``num_negatives``
fresh negatives drawn for that batch only (``ncf.sampling.epoch_batches``), so
memory does not grow with the epoch. One pass of Adam with binary
cross-entropy on logits, then the validation item of every user is scored.
The epoch with the best validation metric is kept; training stops after
``patience`` epochs without improvement. The test item is never looked at here.

Under torchrun (``devices.Ranks``) each rank trains on its own shard of
every epoch with DistributedDataParallel; a batch of ``batch_size`` pairs is
split between the ranks, so the optimisation is the same as one process's.
Rank 0 evaluates, decides, and writes the state; the others follow its
decisions.

With ``state_path`` the whole training state (weights, optimizer, random
generator, history, best epoch) is written after every epoch, atomically
and with a checksum; ``resume=True`` continues from it, and a resumed run
ends with the same weights as one never interrupted. A NaN or infinite loss
stops training at once (``TrainingDivergedError``).
"""

from __future__ import annotations

import copy
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from neo_ml.data.splits import LeaveOneOutSplit
from neo_ml.devices import Ranks, choose_device
from neo_ml.errors import CheckpointError, NeoMLError, TrainingDivergedError
from neo_ml.files import checksum_path, read_verified, write_verified
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.evaluate import evaluate_model
from neo_ml.ncf.model import build_model
from neo_ml.ncf.sampling import NegativeSampler, SequenceWindows, epoch_batches, sequence_batches
from neo_ml.ncf.text_path import fit_text_path

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: nn.Module
    config: NCFConfig
    history: list[dict]
    best_epoch: int
    validation_metrics: dict[str, float]
    train_seconds: float
    text_seconds: float = 0.0  # fitting the text path, after training

    @property
    def seconds_to_best_epoch(self) -> float:
        """Training time up to the end of the chosen epoch (validation included), and the text path's fit:
        what a run needs."""
        return float(sum(record["seconds"] for record in self.history[:self.best_epoch])) + self.text_seconds


@torch.no_grad()
def _validation_loss(model, split: LeaveOneOutSplit, ratio: int, chunk: int = 4096) -> float:
    """BCE on each user's validation item and ``ratio`` of its saved negatives (``chunk`` users at a time);
    for a sequence model, the cross-entropy of the validation item against every item, as it trains."""
    users = np.flatnonzero(split.validation_items >= 0)
    if len(users) == 0:
        return float("nan")
    device = next(model.parameters()).device
    if model.sequence_model:
        return _validation_cross_entropy(model, split, users, device)
    rows = split.history_for("validation", model.history_length) if model.history_length else None
    total = 0.0
    for start in range(0, len(users), chunk):
        batch = users[start:start + chunk]
        items = np.concatenate([split.validation_items[batch, None],
                                split.validation_negatives[batch, :ratio]], axis=1)
        labels = np.zeros(items.shape, np.float32)
        labels[:, 0] = 1
        history = None if rows is None else torch.as_tensor(np.repeat(rows[batch], items.shape[1], axis=0))
        logits = model(*(None if a is None else torch.as_tensor(a).to(device) for a in
                         (np.repeat(batch, items.shape[1]), items.reshape(-1), history)))
        total += float(nn.functional.binary_cross_entropy_with_logits(
            logits, torch.as_tensor(labels.reshape(-1), device=device), reduction="sum"))
    return total / (len(users) * (ratio + 1))


@torch.no_grad()
def _validation_cross_entropy(model, split: LeaveOneOutSplit, users: np.ndarray, device, chunk: int = 256) -> float:
    rows = split.history_for("validation", model.history_length)
    total = 0.0
    for start in range(0, len(users), chunk):
        batch = users[start:start + chunk]
        logits = model.score_all_items(torch.as_tensor(batch, device=device),
                                       torch.as_tensor(rows[batch], device=device))
        total += float(nn.functional.cross_entropy(
            logits, torch.as_tensor(split.validation_items[batch], device=device), reduction="sum"))
    return total / len(users)


class SequenceObjective(nn.Module):
    """A sequence model's training loss as a forward pass, so DistributedDataParallel sees the step."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, users, inputs, targets, negatives=None) -> torch.Tensor:
        return self.model.sequence_loss(inputs, targets, negatives, users)


class SplitAdam:
    """Adam for the dense weights and SparseAdam for sparse embeddings, stepped together.

    With large tables (a million items, 138k users) dense Adam moves every row
    at every step; SparseAdam moves only the rows the batch touched (lazy Adam).
    """

    def __init__(self, model: nn.Module, learning_rate: float):
        sparse = [p for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse for p in m.parameters()]
        chosen = {id(p) for p in sparse}
        dense = [p for p in model.parameters() if id(p) not in chosen]
        self.parts = [torch.optim.Adam(dense, lr=learning_rate), torch.optim.SparseAdam(sparse, lr=learning_rate)]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()

    def state_dict(self) -> dict:
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state: dict) -> None:
        for part, saved in zip(self.parts, state["parts"], strict=True):
            part.load_state_dict(saved)


def make_optimizer(model: nn.Module, config: NCFConfig):
    if not config.sparse:
        return torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.weight_decay:
        raise NeoMLError("sparse embeddings train with SparseAdam, which has no weight decay; "
                         "set weight_decay to 0 or sparse to false")
    if model.sequence_model and config.negatives_for(model.num_items) is None:
        raise NeoMLError(f"sparse embeddings need a sampled softmax, but all {model.num_items:,} items are ranked "
                         "at every position (softmax_negatives must be below the number of items); set sparse "
                         "to false")
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            module.sparse = True
    return SplitAdam(model, config.learning_rate)


# Knobs a resumed run may change: they do not alter what an epoch computes.
RESUMABLE_CHANGES = ("epochs", "patience", "threads", "device")


def save_training_state(path: Path, state: dict) -> None:
    write_verified(path, lambda tmp: torch.save(state, tmp))


def load_training_state(path: Path, config: NCFConfig, fingerprint: str) -> dict:
    """The state of an interrupted run, if it was trained with the same configuration and data."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no training state to resume from")
    state = torch.load(io.BytesIO(read_verified(path)), map_location="cpu", weights_only=True)
    before = {k: v for k, v in state["config"].items() if k not in RESUMABLE_CHANGES}
    now = {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_CHANGES}
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if changed:
        raise CheckpointError(f"{path}: cannot resume, the configuration differs in {changed} "
                              f"(state: {[before.get(k) for k in changed]}, now: {[now.get(k) for k in changed]})")
    if state["fingerprint"] != fingerprint:
        raise CheckpointError(f"{path}: cannot resume, the training data differ from the interrupted run's")
    return state


def remove_training_state(path: Path) -> None:
    Path(path).unlink(missing_ok=True)
    checksum_path(path).unlink(missing_ok=True)


def positives_per_batch(config: NCFConfig, world_size: int = 1) -> int:
    """Positives per batch on each rank: ``batch_size`` pairs in all, split between the ranks."""
    return max(1, config.batch_size // ((1 + config.num_negatives) * world_size))


def train_ncf_model(split: LeaveOneOutSplit, config: NCFConfig | None = None, progress: bool = True,
                    evaluate_full: bool = False, state_path: Path | None = None, resume: bool = False,
                    fingerprint: str = "", ranks: Ranks | None = None,
                    max_batches: int | None = None, item_text: np.ndarray | None = None,
                    on_epoch: Callable[[dict], None] | None = None) -> TrainResult:
    """Train on ``split.train``, choose the epoch on ``split``'s validation items.

    ``state_path``: where the training state goes after each epoch; ``resume``
    continues from it. ``fingerprint`` (the data checksum) must match to resume.
    ``ranks``: this process's place under torchrun (default: one process on
    ``config.device``). ``max_batches`` ends each epoch early (for benchmarks). ``item_text``: each item's
    sentence embedding, (num_items, width): with ``config.item_text``, a sequence model gains a text path
    (``ncf.text_path``) once trained (``text_seconds``). ``on_epoch``: called with each epoch's record on
    the main rank, after validation (a tuning trial reports to its pruner there; an exception it raises,
    such as Optuna's ``TrialPruned``, ends training).
    """
    config = config or NCFConfig()
    ranks = ranks or Ranks(device=choose_device(config.device))
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = build_model(config.architecture, split.num_users, split.num_items,
                        **{k: v for k, v in config.to_dict().items() if k != "architecture"}).to(ranks.device)
    optimizer = make_optimizer(model, config)
    fit_epoch = _fit_sequences(split, config, ranks) if model.sequence_model else _fit_pairs(split, config, ranks)
    evaluate_full = evaluate_full or config.select_metric.endswith("_full")
    has_validation = bool((split.validation_items >= 0).any())

    history: list[dict] = []
    best_score, best_epoch, best_state, best_metrics = -np.inf, 0, None, {}
    first_epoch, stopped, earlier_seconds = 1, False, 0.0
    if resume:
        state = load_training_state(state_path, config, fingerprint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        history, best_score, best_epoch = state["history"], state["best_score"], state["best_epoch"]
        best_state, best_metrics, stopped = state["best_state"], state["best_metrics"], state["stopped"]
        first_epoch, earlier_seconds = state["epoch"] + 1, state["seconds"]
        log.info("Resuming from %s after epoch %d", state_path, state["epoch"])
    trained = ranks.wrap(SequenceObjective(model) if model.sequence_model else model)  # what batches go through
    started = time.perf_counter() - earlier_seconds
    for epoch in range(first_epoch, config.epochs + 1):
        if stopped:
            break
        epoch_start = time.perf_counter()
        model.train()
        total, pairs = fit_epoch(trained, optimizer, epoch, progress and ranks.is_main, max_batches,
                                 f"; the state after epoch {epoch - 1} is in {state_path}"
                                 if state_path and epoch > 1 else "")
        total, pairs = ranks.sum(total, pairs)
        record = {"epoch": epoch, "train_loss": total / pairs, "train_pairs": int(pairs),
                  "fit_seconds": time.perf_counter() - epoch_start}
        if ranks.is_main:
            model.eval()
            if has_validation:
                record["val_loss"] = _validation_loss(model, split, config.num_negatives)
                record |= {f"val_{k}": v for k, v in
                           evaluate_model(model, split, "validation", full=evaluate_full).items()}
            record["seconds"] = time.perf_counter() - epoch_start
            log.info("Epoch %d/%d  Train Loss %.4f  Val Loss %.4f  NDCG@10 %.4f  Hit Rate@10 %.4f",
                     epoch, config.epochs, record["train_loss"], record.get("val_loss", float("nan")),
                     record.get("val_ndcg@10", float("nan")), record.get("val_hr@10", float("nan")))
            if progress:
                tqdm.write(_format_epoch(record))
            if on_epoch is not None:
                on_epoch(record)
            # Without validation items, the lowest training loss stands in.
            score = record[f"val_{config.select_metric}"] if has_validation else -record["train_loss"]
            if score > best_score:
                best_score, best_epoch = score, epoch
                best_state = copy.deepcopy(model.state_dict())
                best_metrics = {k: v for k, v in record.items() if k.startswith("val_")}
            stopped = epoch - best_epoch >= config.patience
            if state_path is not None:
                save_training_state(state_path, {
                    "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "torch_rng": torch.get_rng_state(), "history": history + [record],
                    "best_score": float(best_score), "best_epoch": best_epoch, "best_state": best_state,
                    "best_metrics": best_metrics, "stopped": stopped, "config": config.to_dict(),
                    "fingerprint": fingerprint, "seconds": time.perf_counter() - started})
        record, best_epoch, stopped = ranks.from_main((record, best_epoch, stopped))
        history.append(record)
    if ranks.is_main:
        model.load_state_dict(best_state)
    model.eval()
    seconds, text_seconds = time.perf_counter() - started, 0.0
    if config.item_text and model.sequence_model and item_text is not None and item_text.shape[1]:
        # every rank fits the same path from the same weights and seed
        text_seconds = fit_text_path(model, split, item_text, config)
        log.info("Text path fitted in %.1f s", text_seconds)
    return TrainResult(model, config, history, best_epoch, ranks.from_main(best_metrics), seconds, text_seconds)


def _step(trained, optimizer, loss: torch.Tensor, epoch: int, step: int, learning_rate: float, where: str) -> float:
    """One optimizer step on ``loss``; a NaN or infinite loss stops training (TrainingDivergedError)."""
    value = TrainingDivergedError.check(loss.item(), epoch, step, learning_rate, where)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return value


def _epoch_fitter(steps: int, batches_for, loss_of, config: NCFConfig, ranks: Ranks):
    """``fit(trained, optimizer, epoch, progress, max_batches, where)``: one epoch over ``batches_for(epoch)``
    (tuples of arrays, moved to the device), each stepped on ``loss_of(trained, *tensors)`` -> (mean loss,
    examples). Returns (summed loss, examples) of this rank."""

    def fit(trained, optimizer, epoch: int, progress: bool, max_batches: int | None, where: str):
        total, examples = 0.0, 0
        bar = tqdm(batches_for(epoch), total=steps, desc=f"epoch {epoch}/{config.epochs}", leave=False,
                   disable=not progress)
        for step, arrays in enumerate(bar, start=1):
            loss, count = loss_of(trained, *(None if a is None else torch.as_tensor(a).to(ranks.device)
                                             for a in arrays))
            value = _step(trained, optimizer, loss, epoch, step, config.learning_rate, where)
            total, examples = total + value * count, examples + count
            if step == max_batches:
                break
        return total, examples

    return fit


def _fit_pairs(split: LeaveOneOutSplit, config: NCFConfig, ranks: Ranks):
    """An epoch of a pointwise model: shuffled positives, each with ``num_negatives`` fresh negatives,
    binary cross-entropy on logits; examples are (user, item) pairs."""
    loss_fn = nn.BCEWithLogitsLoss()
    sampler = NegativeSampler(split.train, split.num_items)
    per_batch = positives_per_batch(config, ranks.world_size)

    def batches_for(epoch: int):
        for batch in epoch_batches(split.train, sampler, config.num_negatives, per_batch, config.seed, epoch,
                                   config.history_length, ranks.rank, ranks.world_size):
            yield batch.users, batch.items, batch.labels, batch.history

    def loss_of(trained, users, items, labels, history):
        return loss_fn(trained(users, items, history), labels), len(labels)

    return _epoch_fitter(-(-(len(split.train) // ranks.world_size) // per_batch), batches_for, loss_of, config,
                         ranks)


def _fit_sequences(split: LeaveOneOutSplit, config: NCFConfig, ranks: Ranks):
    """An epoch of a sequence model: windows of each user's items in time order, the next item predicted
    at every position against every item (or sampled items: ``NCFConfig.negatives_for``); examples are
    the predicted positions."""
    # Windows of every item read; the last ``window_stride`` (default: the attention window's) are targets.
    windows = SequenceWindows.from_pairs(split.train, config.items_read, pad=split.num_items,
                                         stride=config.window_stride or config.history_length)
    per_batch = max(1, config.batch_size // ranks.world_size)
    negatives = config.negatives_for(split.num_items)

    def batches_for(epoch: int):
        return sequence_batches(windows, per_batch, config.seed, epoch, split.num_items, negatives,
                                ranks.rank, ranks.world_size)

    def loss_of(trained, users, inputs, targets, sampled):
        return trained(users, inputs, targets, sampled), int((targets != split.num_items).sum())

    return _epoch_fitter(-(-(len(windows) // ranks.world_size) // per_batch), batches_for, loss_of, config,
                         ranks)


def _format_epoch(record: dict) -> str:
    parts = [f"epoch {record['epoch']:>2}", f"train_loss {record['train_loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_")]
    return "  ".join(parts + [f"{record['seconds']:.1f}s"])
