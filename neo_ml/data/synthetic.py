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
