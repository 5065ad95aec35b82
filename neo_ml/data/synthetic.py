"""Synthetic interactions with the structure real ones have, for tests and scale runs.

Items carry a Zipf popularity and belong to one of ``num_clusters`` tastes;
each user prefers one taste, so collaborative signal exists for a model to
find and a popularity ranking cannot match. Users act in sessions spread over
``days``, and taste drifts within a session toward the previous item's taste,
so recency carries signal as it does in MovieLens.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neo_ml.data.interactions import interactions_frame

INTERACTION_TYPES = ("view", "bookmark", "annotation", "share", "collection_add")
TYPE_WEIGHTS = (0.55, 0.2, 0.1, 0.05, 0.1)
TYPE_STRENGTH = {"view": 0.25, "bookmark": 0.75, "annotation": 0.6, "share": 0.7, "collection_add": 0.9}


def create_synthetic_interactions(num_users: int = 50, num_items: int = 200, num_interactions: int = 1000,
                                  num_clusters: int = 5, taste_strength: float = 0.8,
                                  popularity_exponent: float = 1.0, days: int = 180,
                                  seed: int = 0) -> pd.DataFrame:
    """A normalised interactions frame (see ``neo_ml.data.interactions``), one row per distinct pair."""
    if num_interactions > num_users * num_items // 2:
        raise ValueError("num_interactions must be at most half of num_users * num_items")
    rng = np.random.default_rng(seed)
    item_cluster = rng.integers(0, num_clusters, num_items)
    popularity = 1.0 / np.arange(1, num_items + 1) ** popularity_exponent
    popularity = popularity[rng.permutation(num_items)]
    by_cluster = [np.flatnonzero(item_cluster == c) for c in range(num_clusters)]
    weights = [popularity[members] / popularity[members].sum() for members in by_cluster]
    overall = popularity / popularity.sum()

    user_taste = rng.integers(0, num_clusters, num_users)
    activity = rng.pareto(1.5, num_users) + 1  # a few heavy users, many light ones
    per_user = np.maximum(1, np.round(activity / activity.sum() * num_interactions)).astype(int)
    per_user = np.minimum(per_user, num_items // 2)

    rows = []
    start = pd.Timestamp("2025-01-01", tz="UTC").timestamp()
    for user in range(num_users):
        seen: set[int] = set()
        clock = start + rng.uniform(0, days * 86400 * 0.8)
        last_cluster = user_taste[user]
        while len(seen) < per_user[user]:
            if rng.random() < taste_strength:
                cluster = last_cluster if rng.random() < 0.5 else user_taste[user]
                item = int(rng.choice(by_cluster[cluster], p=weights[cluster]))
            else:
                item = int(rng.choice(num_items, p=overall))
            if item in seen:
                continue
            seen.add(item)
            last_cluster = item_cluster[item]
            clock += rng.exponential(600) if rng.random() < 0.8 else rng.exponential(3 * 86400)
            kind = INTERACTION_TYPES[rng.choice(len(INTERACTION_TYPES), p=TYPE_WEIGHTS)]
            strength = float(np.clip(TYPE_STRENGTH[kind] + rng.uniform(-0.1, 0.1), 0.2, 1.0))
            rows.append({"user_id": f"user_{user + 1:03d}", "item_id": f"item_{item + 1:03d}",
                         "timestamp": int(clock), "interaction_type": kind,
                         "implicit_rating": round(strength, 2)})
    return interactions_frame(rows).sort_values("timestamp", kind="stable").reset_index(drop=True)


def create_scale_interactions(num_users: int, num_items: int, num_interactions: int, num_clusters: int = 50,
                              taste_strength: float = 0.8, popularity_exponent: float = 1.0,
                              min_per_user: int = 5, days: int = 365, seed: int = 0) -> pd.DataFrame:
    """About ``num_interactions`` distinct (user, item) pairs at MovieLens-20M scale, vectorised.

    The same tastes and Zipf popularity as ``create_synthetic_interactions``
    (without its within-session drift), as integer ``user``, ``item`` and
    ``timestamp`` columns: at 20M rows string ids would cost gigabytes.
    Each user has at least ``min_per_user`` interactions (MovieLens: 20).
    """
    rng = np.random.default_rng(seed)
    item_cluster = rng.integers(0, num_clusters, num_items)
    popularity = 1.0 / np.arange(1, num_items + 1) ** popularity_exponent
    popularity = popularity[rng.permutation(num_items)]
    # Items ordered by cluster, with cumulative weights running from c to c + 1 inside cluster c,
    # so one searchsorted draws an item of any cluster by popularity.
    by_cluster = np.argsort(item_cluster, kind="stable")
    clusters = item_cluster[by_cluster]
    cluster_total = np.bincount(clusters, weights=popularity[by_cluster], minlength=num_clusters)
    within = popularity[by_cluster] / cluster_total[clusters]
    running = np.cumsum(within)
    first = np.searchsorted(clusters, clusters)  # each row's cluster starts here
    cumulative = clusters + running - (running[first] - within[first])
    overall = np.cumsum(popularity / popularity.sum())

    per_user = _allocate(rng.pareto(1.5, num_users) + 1, num_interactions, min_per_user, num_items // 2)
    user_taste = rng.integers(0, num_clusters, num_users)

    def draw(users: np.ndarray) -> np.ndarray:
        items = np.empty(len(users), dtype=np.int64)
        tasteful = rng.random(len(users)) < taste_strength
        wanted = user_taste[users[tasteful]] + rng.random(int(tasteful.sum()))
        items[tasteful] = by_cluster[np.minimum(np.searchsorted(cumulative, wanted), num_items - 1)]
        items[~tasteful] = np.minimum(np.searchsorted(overall, rng.random(int((~tasteful).sum()))), num_items - 1)
        return items

    # Draw, drop repeats, and draw again for the users still short: popular items repeat often,
    # so after a few rounds the heaviest users fill up with uniformly drawn items. Later rounds
    # are small and merge into the sorted keys without sorting them again.
    users = np.repeat(np.arange(num_users, dtype=np.int64), per_user * 5 // 4)
    keys = np.unique(users * num_items + draw(users))
    for round_ in range(30):
        short = per_user - np.bincount(keys // num_items, minlength=num_users)
        if (short <= 0).all():
            break
        users = np.repeat(np.arange(num_users, dtype=np.int64), np.clip(short, 0, None) * 3 // 2 + 1)
        items = draw(users) if round_ < 2 else rng.integers(0, num_items, len(users))
        new = np.unique(users * num_items + items)
        at = np.searchsorted(keys, new)
        fresh = new[keys[np.minimum(at, len(keys) - 1)] != new]
        keys = np.insert(keys, np.searchsorted(keys, fresh), fresh)
    users, items = keys // num_items, keys % num_items
    # Each user keeps ``per_user`` of its distinct items, chosen at random.
    order = np.lexsort((rng.random(len(users)), users))
    users, items = users[order], items[order]
    starts = np.searchsorted(users, np.arange(num_users))
    keep = (np.arange(len(users)) - starts[users]) < per_user[users]
    users, items = users[keep], items[keep]
    start = int(pd.Timestamp("2025-01-01", tz="UTC").timestamp())
    timestamps = start + rng.integers(0, days * 86400, len(users))
    return pd.DataFrame({"user": users, "item": items, "timestamp": timestamps})


def _allocate(activity: np.ndarray, total: int, low: int, high: int) -> np.ndarray:
    """Integer counts proportional to ``activity``, each within [low, high], summing to about ``total``."""
    counts = np.full(len(activity), low, dtype=np.int64)
    for _ in range(20):  # capped users give their excess back to the others
        free = counts < high
        left = total - counts.sum()
        if left <= 0 or not free.any():
            break
        share = activity * free / (activity * free).sum() * left
        counts = np.minimum(high, counts + np.floor(share).astype(np.int64))
        if np.floor(share).sum() == 0:
            break
    return counts
