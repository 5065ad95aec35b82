import numpy as np
import pandas as pd
import pytest

from neo_ml.data.splits import (
    IdMap,
    LeaveOneOutSplit,
    NegativeSampler,
    epoch_batches,
    history_before_each,
    latest_items,
    leave_one_out_split,
    split_75_25,
    split_80_20,
)
from neo_ml.errors import DataFormatError


def _frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).astype(
        {"user_id": str, "item_id": str})


def test_id_map_orders_numeric_ids_numerically():
    ids = IdMap.from_ids(["10", "9", "100", "9"])
    assert ids.ids == ("9", "10", "100")
    assert ids.encode(["100", "9"]).tolist() == [2, 0]
    with pytest.raises(KeyError):
        ids.encode(["11"])


def test_loo_holds_out_last_then_previous_by_time_then_item():
    frame = _frame([("u", "3", 5), ("u", "1", 1), ("u", "2", 5), ("u", "4", 2), ("v", "1", 1), ("v", "2", 2)])
    split = leave_one_out_split(frame, num_negatives=1, seed=0)
    u, v = split.users.index["u"], split.users.index["v"]
    item = split.items.ids
    assert item[split.test_items[u]] == "3"  # same time as "2": the larger id is later
    assert item[split.validation_items[u]] == "2"
    assert split.validation_items[v] == -1 and item[split.test_items[v]] == "2"
    assert sorted(item[i] for i in split.train[split.train[:, 0] == u, 1]) == ["1", "4"]


def test_loo_has_no_leakage_and_negatives_are_unseen(synthetic_frame):
    split = leave_one_out_split(synthetic_frame, num_negatives=20, seed=3)
    known = {(u, i) for u, i in split.all_pairs()}
    train = {(u, i) for u, i in split.train}
    for user in range(split.num_users):
        for held in (split.test_items[user], split.validation_items[user]):
            assert held == -1 or (user, held) not in train
        for negative in np.concatenate([split.test_negatives[user], split.validation_negatives[user]]):
            assert (user, negative) not in known
        assert len(set(split.test_negatives[user])) == 20
    assert len(known) == synthetic_frame.drop_duplicates(["user_id", "item_id"]).shape[0]


def test_loo_split_round_trips_through_its_file(tmp_path, synthetic_split):
    path = tmp_path / "split.npz"
    synthetic_split.save(path)
    again = LeaveOneOutSplit.load(path)
    assert again.users == synthetic_split.users and again.items == synthetic_split.items
    for name in ("train", "test_items", "validation_items", "test_negatives", "validation_negatives"):
        assert np.array_equal(getattr(again, name), getattr(synthetic_split, name))


def test_same_seed_same_negatives(synthetic_frame):
    a = leave_one_out_split(synthetic_frame, seed=5)
    b = leave_one_out_split(synthetic_frame, seed=5)
    c = leave_one_out_split(synthetic_frame, seed=6)
    assert np.array_equal(a.test_negatives, b.test_negatives)
    assert not np.array_equal(a.test_negatives, c.test_negatives)


@pytest.mark.parametrize(("splitter", "fraction"), [(split_80_20, 0.2), (split_75_25, 0.25)])
def test_random_splits_are_per_user_disjoint_and_sized(synthetic_frame, splitter, fraction):
    train, test = splitter(synthetic_frame, seed=42)
    assert len(train) + len(test) == len(synthetic_frame)
    assert not set(train.index) & set(test.index)
    assert set(train["user_id"]) == set(synthetic_frame["user_id"])  # everyone keeps training data
    assert len(test) / len(synthetic_frame) == pytest.approx(fraction, abs=0.03)
    again, _ = splitter(synthetic_frame, seed=42)
    assert train.index.equals(again.index)


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


def test_history_sees_only_the_past():
    pairs = np.array([[0, 5], [0, 6], [0, 7], [1, 8], [1, 9]])
    history = history_before_each(pairs, 2, pad=99)
    assert history.tolist() == [[99, 99], [5, 99], [6, 5], [99, 99], [8, 99]]
    assert latest_items(pairs, 3, 2, pad=99).tolist() == [[7, 6], [9, 8], [99, 99]]


def test_random_holdout_keeps_one_random_item_per_user_out_of_train(synthetic_frame):
    from neo_ml.data.splits import random_holdout_split

    split = random_holdout_split(synthetic_frame, num_negatives=10, seed=4)
    latest = leave_one_out_split(synthetic_frame, num_negatives=10, hold_out_test=False)
    train = {(u, i) for u, i in split.train}
    held = split.validation_items
    assert (split.test_items == -1).all()
    assert all(item == -1 or (user, item) not in train for user, item in enumerate(held))
    assert len(train) + (held >= 0).sum() == len(split.all_pairs())
    assert (held != latest.validation_items).mean() > 0.5  # random, not the latest
    assert np.array_equal(held, random_holdout_split(synthetic_frame, num_negatives=10, seed=4).validation_items)
