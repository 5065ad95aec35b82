import numpy as np
import pandas as pd
import pytest

from neo_ml.data.ids import IdMap
from neo_ml.data.splits import (
    LeaveOneOutSplit,
    history_before_each,
    latest_items,
    leave_one_out_split,
    split_75_25,
    split_80_20,
)


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
