"""Training negatives and epoch batches of the NCF family (ncf.sampling)."""

import numpy as np
import pytest

from neo_ml.data.splits import history_before_each
from neo_ml.errors import DataFormatError
from neo_ml.ncf.sampling import NegativeSampler, epoch_batches


def _epoch(split, epoch=1, rank=0, world_size=1, per_batch=50, history_length=0):
    sampler = NegativeSampler(split.train, split.num_items)
    return list(epoch_batches(split.train, sampler, 4, per_batch, seed=7, epoch=epoch,
                              history_length=history_length, rank=rank, world_size=world_size))


def test_an_epoch_streams_every_positive_once_with_fresh_negatives(synthetic_split):
    positives = synthetic_split.train
    known = {(u, i) for u, i in positives}
    batches = _epoch(synthetic_split, history_length=3)
    assert max(len(b.labels) for b in batches) == 5 * 50  # bounded by the batch, not the epoch
    seen = []
    for b in batches:
        n = int(b.labels.sum())
        assert (b.labels[:n] == 1).all() and (b.labels[n:] == 0).sum() == 4 * n
        seen += list(zip(b.users[:n], b.items[:n], strict=True))
        assert not any((u, i) in known for u, i in zip(b.users[n:], b.items[n:], strict=True))
        assert (b.users[n:] == np.repeat(b.users[:n], 4)).all()
        # A negative pair sees the history of its positive; the positive only the items before it.
        assert (b.history[n:] == np.repeat(b.history[:n], 4, axis=0)).all()
    assert sorted(seen) == sorted(map(tuple, positives))
    full = history_before_each(positives, 3, pad=synthetic_split.num_items)
    first = batches[0]
    rows = [np.flatnonzero((positives == pair).all(axis=1))[0] for pair in
            zip(first.users[:50], first.items[:50], strict=True)]
    assert (first.history[:50] == full[rows]).all()


def test_negatives_are_resampled_each_epoch_and_an_epoch_repeats_exactly(synthetic_split):
    def negatives(epoch):
        return np.concatenate([b.items[b.labels == 0] for b in _epoch(synthetic_split, epoch)])

    assert not np.array_equal(negatives(1), negatives(2))
    assert np.array_equal(negatives(1), negatives(1))


def test_ranks_take_disjoint_equal_shards_of_an_epoch(synthetic_split):
    shards = [[(u, i) for b in _epoch(synthetic_split, rank=r, world_size=3, per_batch=20)
               for u, i in zip(b.users[b.labels == 1], b.items[b.labels == 1], strict=True)]
              for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    assert len(set().union(*map(set, shards))) == 3 * len(shards[0]) > len(synthetic_split.train) - 3


def test_sampler_refuses_a_user_who_saw_everything():
    with pytest.raises(DataFormatError):
        NegativeSampler(np.array([[0, 0], [0, 1]]), num_items=2)
