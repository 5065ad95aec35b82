"""Training negatives and batches for the NCF family: uniform negatives that are never a known positive,
streamed one batch at a time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neo_ml.data.splits import history_before_rows
from neo_ml.errors import DataFormatError


class NegativeSampler:
    """Vectorised uniform negative sampling that never returns a known positive.

    Known positives are held as sorted ``user * num_items + item`` keys, so a
    membership test for a whole batch is one ``searchsorted``.
    """

    def __init__(self, positives: np.ndarray, num_items: int):
        self.num_items = int(num_items)
        self.keys = np.unique(positives[:, 0].astype(np.int64) * self.num_items + positives[:, 1])
        counts = np.bincount(positives[:, 0], minlength=int(positives[:, 0].max()) + 1)
        if (counts >= self.num_items).any():
            raise DataFormatError("a user has interacted with every item; no negatives exist")

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.num_items + items
        pos = np.searchsorted(self.keys, keys)
        pos[pos == len(self.keys)] = 0
        return self.keys[pos] == keys

    def sample(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        items = rng.integers(0, self.num_items, size=len(users))
        bad = np.flatnonzero(self.is_positive(users, items))
        while len(bad):
            items[bad] = rng.integers(0, self.num_items, size=len(bad))
            bad = bad[self.is_positive(users[bad], items[bad])]
        return items


@dataclass
class TrainingBatch:
    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray  # 1.0 for the positives first, then 0.0 for their negatives
    history: np.ndarray | None  # the user's items before each pair's positive (see history_before_each)


def epoch_shard(count: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """This rank's rows of an epoch: a shuffle of ``count`` rows by (seed, epoch) only, every
    ``world_size``-th row of it from ``rank`` on; the shards are disjoint and equally long."""
    order = np.random.default_rng([seed, epoch]).permutation(count)
    return order[:count - count % world_size][rank::world_size]


def epoch_batches(positives: np.ndarray, sampler: NegativeSampler, ratio: int, positives_per_batch: int,
                  seed: int, epoch: int, history_length: int = 0, rank: int = 0, world_size: int = 1):
    """One epoch of training batches, streamed: each positive once, with ``ratio`` fresh negatives.

    Negatives are drawn batch by batch, so memory does not grow with the
    epoch. The shuffle depends on (seed, epoch) only, and each of
    ``world_size`` ranks takes every ``world_size``-th positive of it: the
    shards are disjoint and equally long (up to ``world_size - 1`` positives
    sit out an epoch, different ones each time). Negatives come from a
    generator of (seed, epoch, rank), so an epoch is the same however often
    it is run, which makes resuming exact.
    """
    shard = epoch_shard(len(positives), seed, epoch, rank, world_size)
    rng = np.random.default_rng([seed, epoch, rank])
    for start in range(0, len(shard), positives_per_batch):
        rows = shard[start:start + positives_per_batch]
        pair_rows = np.concatenate([rows, np.repeat(rows, ratio)])
        users = positives[pair_rows, 0]
        items = positives[pair_rows, 1]
        items[len(rows):] = sampler.sample(users[len(rows):], rng)
        labels = np.zeros(len(pair_rows), np.float32)
        labels[:len(rows)] = 1
        history = history_before_rows(positives, pair_rows, history_length, sampler.num_items) \
            if history_length else None
        yield TrainingBatch(users, items, labels, history)


@dataclass
class SequenceWindows:
    """Training windows of a sequence model: each row is ``length`` consecutive items of one user
    (oldest first, padded on the left with ``pad``) and the item that follows each of them."""

    users: np.ndarray  # (windows,)
    inputs: np.ndarray  # (windows, length), int32
    targets: np.ndarray  # (windows, length), int32; ``pad`` where there is no input

    @classmethod
    def from_pairs(cls, pairs: np.ndarray, length: int, pad: int, stride: int | None = None) -> SequenceWindows:
        """Every user's time-ordered items cut, from the latest back, into windows of ``length`` inputs,
        so every training interaction is a target once (its user's first item is only read).

        ``stride`` (default ``length``): windows overlap by ``length - stride`` items, and only each
        window's last ``stride`` positions are targets, so every target reads at least
        ``length - stride`` earlier items where its user has them."""
        stride = length if stride is None else stride
        if not len(pairs):
            return cls(np.zeros(0, np.int64), np.zeros((0, length), np.int32), np.zeros((0, length), np.int32))
        starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
        ends = np.r_[starts[1:], len(pairs)]
        counts = [len(range(end - start, 1, -stride)) for start, end in zip(starts, ends, strict=True)]
        # Filled in place, in 32 bits (batches widen them): at MovieLens-20M size the windows of 200 items
        # are half a million rows, 1.6 GB as lists of 64-bit rows.
        users = np.repeat(pairs[starts, 0], counts).astype(np.int64)
        inputs = np.full((len(users), length), pad, dtype=np.int32)
        targets = np.full((len(users), length), pad, dtype=np.int32)
        row = 0
        for start, end in zip(starts, ends, strict=True):
            items = pairs[start:end, 1]
            for stop in range(len(items), 1, -stride):  # reads items[first - 1:stop - 1]
                first, targeted = max(1, stop - length), max(1, stop - stride)
                inputs[row, length - (stop - first):] = items[first - 1:stop - 1]
                targets[row, length - (stop - targeted):] = items[targeted:stop]
                row += 1
        return cls(users, inputs, targets)

    def __len__(self) -> int:
        return len(self.users)


def sequence_batches(windows: SequenceWindows, per_batch: int, seed: int, epoch: int, num_items: int,
                     negatives: int | None = None, rank: int = 0, world_size: int = 1):
    """One epoch of (users, inputs, targets, negatives) batches of windows, shuffled by (seed, epoch) and
    sharded across ranks as ``epoch_batches`` does; ``negatives`` items drawn per batch (None: all items)."""
    shard = epoch_shard(len(windows), seed, epoch, rank, world_size)
    rng = np.random.default_rng([seed, epoch, rank])
    for start in range(0, len(shard), per_batch):
        rows = shard[start:start + per_batch]
        sampled = None if negatives is None else rng.integers(0, num_items, size=negatives)
        yield (windows.users[rows], windows.inputs[rows].astype(np.int64), windows.targets[rows].astype(np.int64),
               sampled)
