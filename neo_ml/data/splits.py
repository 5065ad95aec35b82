"""Evaluation split protocols for implicit feedback: NCF-LOO, random hold-out, 80/20 and 75/25.

All splits work on an interactions frame with columns ``user_id``, ``item_id``
and ``timestamp`` (ids as strings) and return integer indices from one
:class:`~neo_ml.data.ids.IdMap` per side, so every model and metric shares the same numbering.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from neo_ml.data.ids import IdMap, build_id_maps
from neo_ml.errors import DataFormatError


@dataclass
class LeaveOneOutSplit:
    """NCF-LOO (He et al. 2017): per user the last interaction is test, the one before validation.

    ``train`` holds (user, item) index pairs, in time order within each user.
    ``validation_items``/``test_items`` hold one item per user (-1 where the user
    has too little history to hold one out). The 99 negatives per user are drawn
    from items the user never interacted with, with a fixed seed, and are saved
    with the split so every model ranks the same candidates.
    """

    users: IdMap
    items: IdMap
    train: np.ndarray
    validation_items: np.ndarray
    test_items: np.ndarray
    validation_negatives: np.ndarray
    test_negatives: np.ndarray
    seed: int

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def train_plus_validation(self) -> np.ndarray:
        """Train pairs with each validation item appended last in its user's block."""
        held = self.validation_items >= 0
        extra = np.stack([np.flatnonzero(held), self.validation_items[held]], axis=1)
        pairs = np.concatenate([self.train, extra])
        return pairs[np.argsort(pairs[:, 0], kind="stable")]

    def all_pairs(self) -> np.ndarray:
        """Every known (user, item) pair, time ordered within each user: train, validation, test."""
        held = self.test_items >= 0
        extra = np.stack([np.flatnonzero(held), self.test_items[held]], axis=1)
        pairs = np.concatenate([self.train_plus_validation(), extra])
        return pairs[np.argsort(pairs[:, 0], kind="stable")]

    def history_for(self, which: str, length: int) -> np.ndarray:
        """Each user's latest ``length`` items before the held-out item ``which`` (validation/test)."""
        pairs = self.train if which == "validation" else self.train_plus_validation()
        return latest_items(pairs, self.num_users, length, pad=self.num_items)

    def without_users(self, left_out: np.ndarray) -> LeaveOneOutSplit:
        """The split as if the ``left_out`` user indices had never interacted: the rest re-indexed, the
        items (and so every saved negative) unchanged. A model trained on it has never seen those users."""
        keep = np.ones(self.num_users, dtype=bool)
        keep[np.asarray(left_out, dtype=np.int64)] = False
        new_index = np.cumsum(keep) - 1
        train = self.train[keep[self.train[:, 0]]]
        return LeaveOneOutSplit(
            users=IdMap(tuple(np.array(self.users.ids)[keep].tolist())), items=self.items,
            train=np.stack([new_index[train[:, 0]], train[:, 1]], axis=1),
            validation_items=self.validation_items[keep], test_items=self.test_items[keep],
            validation_negatives=self.validation_negatives[keep], test_negatives=self.test_negatives[keep],
            seed=self.seed)

    def without_item_interactions(self, new_items: np.ndarray) -> LeaveOneOutSplit:
        """The split as if the ``new_items`` (item indices) had never been taken in training: their
        training pairs removed, the rest (validation, test, negatives, numbering) unchanged. A model trained
        on it meets those items as resources added after training."""
        taken = np.isin(self.train[:, 1], np.asarray(new_items, dtype=np.int64))
        return dataclasses.replace(self, train=self.train[~taken])

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp, users=np.array(self.users.ids), items=np.array(self.items.ids),
            train=self.train,
            validation_items=self.validation_items, test_items=self.test_items,
            validation_negatives=self.validation_negatives, test_negatives=self.test_negatives,
            seed=np.array(self.seed))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LeaveOneOutSplit:
        with np.load(path, allow_pickle=False) as npz:
            return cls(
                users=IdMap(tuple(npz["users"].tolist())), items=IdMap(tuple(npz["items"].tolist())),
                train=npz["train"],
                validation_items=npz["validation_items"], test_items=npz["test_items"],
                validation_negatives=npz["validation_negatives"],
                test_negatives=npz["test_negatives"], seed=int(npz["seed"]))


def _encoded(interactions: pd.DataFrame, users: IdMap, items: IdMap) -> pd.DataFrame:
    return _time_ordered(pd.DataFrame({
        "user": users.encode(interactions["user_id"]),
        "item": items.encode(interactions["item_id"]),
        "timestamp": interactions["timestamp"].to_numpy(np.int64),
    }))


def _time_ordered(frame: pd.DataFrame) -> pd.DataFrame:
    # Repeated interactions with one item count once (implicit feedback), at their first time.
    return frame.sort_values(["user", "timestamp", "item"], kind="stable").drop_duplicates(
        ["user", "item"], keep="first")


def history_before_each(pairs: np.ndarray, length: int, pad: int) -> np.ndarray:
    """For (user, item) rows in time order within each user: the ``length`` items before each row.

    Row r of the result lists the user's previous items, latest first, padded
    with ``pad``. A row never sees its own item or anything after it.
    """
    return history_before_rows(pairs, np.arange(len(pairs)), length, pad)


def history_before_rows(pairs: np.ndarray, rows: np.ndarray, length: int, pad: int) -> np.ndarray:
    """``history_before_each`` for the given rows only, so a batch never needs the whole table."""
    history = np.full((len(rows), length), pad, dtype=np.int64)
    for back in range(1, length + 1):
        source = rows - back
        same_user = (source >= 0) & (pairs[np.maximum(source, 0), 0] == pairs[rows, 0])
        history[same_user, back - 1] = pairs[source[same_user], 1]
    return history


def latest_items(pairs: np.ndarray, num_users: int, length: int, pad: int) -> np.ndarray:
    """Each user's last ``length`` items of ``pairs`` (time-ordered per user), latest first."""
    history = np.full((num_users, length), pad, dtype=np.int64)
    if length == 0 or len(pairs) == 0:
        return history
    users = pairs[:, 0]
    # 0 for a user's last row, 1 for the one before, ...
    is_last = np.r_[users[1:] != users[:-1], True]
    block_end = np.flatnonzero(is_last)
    end_of_row = block_end[np.searchsorted(block_end, np.arange(len(pairs)))]
    from_end = end_of_row - np.arange(len(pairs))
    keep = from_end < length
    history[users[keep], from_end[keep]] = pairs[keep, 1]
    return history


def sample_unseen_items(seen_by_user: list[np.ndarray], num_items: int, count: int,
                        rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct items per user, uniformly from the items that user has not seen.

    Rejection sampling: uniform draws, seen items and repeats dropped, the
    first ``count`` kept in draw order. The cost follows ``count`` and the
    user's history, not the catalogue, so a million items cost no more.
    """
    out = np.empty((len(seen_by_user), count), dtype=np.int64)
    for user, seen in enumerate(seen_by_user):
        seen = np.unique(seen)
        unseen = num_items - len(seen)
        if unseen < count:
            raise DataFormatError(f"user index {user} has only {unseen} unseen items; {count} negatives needed")
        picked = np.empty(0, dtype=np.int64)
        while len(picked) < count:
            # Enough draws that, after rejections, one round almost always suffices.
            draws = rng.integers(0, num_items, int((count - len(picked)) * num_items / unseen * 1.3) + 8)
            picked = np.concatenate([picked, draws[~np.isin(draws, seen, assume_unique=False)]])
            _, first = np.unique(picked, return_index=True)
            picked = picked[np.sort(first)]
        out[user] = picked[:count]
    return out


def leave_one_out_split(interactions: pd.DataFrame, num_negatives: int = 99, seed: int = 2017,
                        hold_out_test: bool = True) -> LeaveOneOutSplit:
    """Split per user by (timestamp, item id): last -> test, the one before -> validation.

    With ``hold_out_test=False`` the last item is the validation item and no
    test item is held out (training a model to serve, evaluated elsewhere).
    A user keeps at least one training item; users with too short a history
    hold out nothing. Negatives are capped at the fewest unseen items any user
    has, so small catalogues still split.
    """
    users, items, frame = _encoded_frame(interactions)
    return _leave_one_out(users, items, frame, num_negatives, seed, hold_out_test)


def coded_leave_one_out_split(coded: pd.DataFrame, num_negatives: int = 99, seed: int = 2017,
                              hold_out_test: bool = True) -> LeaveOneOutSplit:
    """``leave_one_out_split`` of integer-coded interactions (columns ``user``, ``item``, ``timestamp``).

    Codes run from 0 and become the ids ("0", "1", ...). At MovieLens-20M scale
    this skips millions of id strings (``data.synthetic.create_scale_interactions``).
    """
    users = IdMap(tuple(map(str, range(int(coded["user"].max()) + 1))))
    items = IdMap(tuple(map(str, range(int(coded["item"].max()) + 1))))
    return _leave_one_out(users, items, _time_ordered(coded[["user", "item", "timestamp"]]),
                          num_negatives, seed, hold_out_test)


def _leave_one_out(users: IdMap, items: IdMap, frame: pd.DataFrame, num_negatives: int, seed: int,
                   hold_out_test: bool) -> LeaveOneOutSplit:
    from_end = frame.groupby("user").cumcount(ascending=False).to_numpy()
    counts = frame.groupby("user")["item"].transform("size").to_numpy()
    test_pos, val_pos = (0, 1) if hold_out_test else (-1, 0)
    test_mask = (from_end == test_pos) & (counts >= 2)
    val_mask = (from_end == val_pos) & (counts >= (3 if hold_out_test else 2))
    return _held_out_split(users, items, frame, val_mask, test_mask, num_negatives, seed)


def random_holdout_split(interactions: pd.DataFrame, num_negatives: int = 99,
                         seed: int = 2017) -> LeaveOneOutSplit:
    """One random interaction per user (of those with two or more) to validation; no test item.

    For protocols whose test items are a random sample rather than the latest
    ones (Recommenders 75/25), so the validation item resembles a test item.
    """
    users, items, frame = _encoded_frame(interactions)
    rng = np.random.default_rng(seed)
    counts = frame.groupby("user")["item"].transform("size").to_numpy()
    keys = pd.Series(rng.random(len(frame)), index=frame.index)
    val_mask = (keys.groupby(frame["user"]).rank(method="first").to_numpy() == 1) & (counts >= 2)
    return _held_out_split(users, items, frame, val_mask, np.zeros(len(frame), bool), num_negatives, seed)


def _encoded_frame(interactions: pd.DataFrame) -> tuple[IdMap, IdMap, pd.DataFrame]:
    if interactions.empty:
        raise DataFormatError("no interactions to split")
    users, items = build_id_maps(interactions)
    return users, items, _encoded(interactions, users, items)


def _held_out_split(users: IdMap, items: IdMap, frame: pd.DataFrame, val_mask: np.ndarray,
                    test_mask: np.ndarray, num_negatives: int, seed: int) -> LeaveOneOutSplit:
    """A LeaveOneOutSplit from row masks over the encoded, time-ordered frame."""
    user_col, item_col = frame["user"].to_numpy(), frame["item"].to_numpy()

    def held(mask: np.ndarray) -> np.ndarray:
        out = np.full(len(users), -1, dtype=np.int64)
        out[user_col[mask]] = item_col[mask]
        return out

    seen = [group.to_numpy() for _, group in frame.groupby("user")["item"]]
    count = min(num_negatives, len(items) - max(len(s) for s in seen))
    rng = np.random.default_rng(seed)
    test_negatives = sample_unseen_items(seen, len(items), count, rng)
    val_negatives = sample_unseen_items(seen, len(items), count, rng)
    train = frame[~(test_mask | val_mask)]
    return LeaveOneOutSplit(
        users=users, items=items,
        train=train[["user", "item"]].to_numpy(np.int64),
        validation_items=held(val_mask), test_items=held(test_mask),
        validation_negatives=val_negatives, test_negatives=test_negatives, seed=seed)


def random_split_per_user(interactions: pd.DataFrame, test_fraction: float,
                          seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, a random ``test_fraction`` of interactions to test (Recommenders' stratified split)."""
    rng = np.random.default_rng(seed)
    keys = rng.random(len(interactions))
    order = pd.Series(keys, index=interactions.index).groupby(interactions["user_id"]).rank(method="first")
    sizes = interactions.groupby("user_id")["user_id"].transform("size")
    n_train = np.round(sizes * (1 - test_fraction)).clip(lower=1)
    is_train = order <= n_train
    return interactions[is_train].copy(), interactions[~is_train].copy()


def split_80_20(interactions: pd.DataFrame, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seed's split: 80 % train, 20 % validation, per user."""
    return random_split_per_user(interactions, 0.2, seed)


def split_75_25(interactions: pd.DataFrame, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Microsoft Recommenders' ``python_stratified_split(ratio=0.75)`` protocol."""
    return random_split_per_user(interactions, 0.25, seed)
