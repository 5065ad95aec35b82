"""The new-user protocol: readers the model never trained on, served from the database.

A seeded share of MovieLens-100k's users is left out of training (``LeaveOneOutSplit.without_users``).
Their interactions before the NCF-LOO test item go into a SQLite database, and ``NCFService(db=...)``
serves them with no retraining: ``predict_batch`` ranks the test item among its 99 saved negatives
(sampled) and ``recommend`` ranks it among every item they have not interacted with (full). The same
users through the same calls on a model trained with them (warm) are the bar.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from neo_ml.bench.timing import figures, mean_and_sd, mean_sd_cell
from neo_ml.data import db as database
from neo_ml.data.corpora import ML100K_CHECKSUM, load_movielens_interactions
from neo_ml.data.splits import LeaveOneOutSplit
from neo_ml.ncf.checkpoint import save_trained
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.evaluate import LOO_KEYS, hit_rate_and_ndcg
from neo_ml.ncf.service import NCFService
from neo_ml.ncf.train import TrainResult, train_ncf_model

NEW_USER_SHARE = 0.1


def pick_new_users(split: LeaveOneOutSplit, share: float, seed: int) -> np.ndarray:
    """A seeded ``share`` of the users who have a test item, as sorted user indices."""
    candidates = np.flatnonzero(split.test_items >= 0)
    count = max(1, round(share * len(candidates)))
    return np.sort(np.random.default_rng(seed).choice(candidates, count, replace=False))


def _database_before_test(path: Path, split: LeaveOneOutSplit, users: np.ndarray, frame: pd.DataFrame):
    """A SQLite database of the ``users``' interactions in ``frame``, each user's test item left out."""
    ids = np.array(split.users.ids)[users]
    test_ids = dict(zip(ids, np.array(split.items.ids)[split.test_items[users]], strict=True))
    frame = frame[frame["user_id"].isin(set(ids))]
    frame = frame[frame["item_id"].to_numpy() != frame["user_id"].map(test_ids).to_numpy()]
    engine = database.connect(f"sqlite:///{path}")
    database.import_interactions(engine, frame)
    return engine


def served_ranks(service: NCFService, split: LeaveOneOutSplit, users: np.ndarray, k: int = 10) -> dict:
    """HR@k / NDCG@k of the test item through ``service``: sampled (``predict_batch`` over the test item
    and its 99 negatives, ties against the model) and full (``recommend``'s top k)."""
    item_ids = np.array(split.items.ids)
    sampled, full = [], []
    for user in users:
        user_id, target = split.users.ids[user], item_ids[split.test_items[user]]
        negatives = item_ids[split.test_negatives[user]].tolist()
        scores = service.predict_batch(user_id, [target, *negatives])
        sampled.append(sum(scores[n] >= scores[target] for n in negatives))
        ranked = [item for item, _ in service.recommend(user_id, k)]
        full.append(ranked.index(target) if target in ranked else k)
    hr, ndcg = hit_rate_and_ndcg(np.array(sampled), k)
    hr_full, ndcg_full = hit_rate_and_ndcg(np.array(full), k)
    return {f"hr@{k}": hr, f"ndcg@{k}": ndcg, f"hr@{k}_full": hr_full, f"ndcg@{k}_full": ndcg_full}


def new_user_run(split: LeaveOneOutSplit, config: NCFConfig, warm: TrainResult, share: float = NEW_USER_SHARE,
                 interactions: pd.DataFrame | None = None, item_text: np.ndarray | None = None) -> dict:
    """One seed: ``config`` trained without a ``share`` of users (drawn with ``config.seed``), those users
    served from the database by it (new) and by ``warm``, trained with them on the whole split.
    ``interactions``: the frame the split was made from (default: MovieLens-100k's); ``item_text``: the
    items' sentence embeddings, for a model that reads them."""
    users = pick_new_users(split, share, config.seed)
    without = split.without_users(users)
    cold = train_ncf_model(without, config, progress=False, item_text=item_text)
    frame = load_movielens_interactions() if interactions is None else interactions
    with tempfile.TemporaryDirectory() as tmp:
        engine = _database_before_test(Path(tmp) / "new_users.db", split, users, frame)
        out = {"users": len(users), "train_seconds": cold.train_seconds, "best_epoch": cold.best_epoch}
        for name, trained, trained_on in (("new", cold, without), ("warm", warm, split)):
            checkpoint = save_trained(Path(tmp) / f"{name}.pt", trained, trained_on, {}, ML100K_CHECKSUM,
                                      "ml-100k")
            out[name] = served_ranks(NCFService(db=engine, model_path=checkpoint), split, users)
        engine.dispose()
    print(f"  new users seed {config.seed}: {len(users)} users; new {figures(out['new'], LOO_KEYS)}; "
          f"warm {figures(out['warm'], LOO_KEYS)}", file=sys.stderr)
    return out


def benchmark_new_users(split: LeaveOneOutSplit, configs: dict[int, NCFConfig], warm: dict[int, TrainResult],
                        share: float = NEW_USER_SHARE, interactions: pd.DataFrame | None = None,
                        item_text: np.ndarray | None = None) -> dict:
    """``new_user_run`` per seed (each its own draw of users), mean and sd of new and warm."""
    interactions = load_movielens_interactions() if interactions is None else interactions  # read once
    runs = [new_user_run(split, configs[seed], warm[seed], share, interactions, item_text) for seed in configs]
    out = {"share": share, "users_per_seed": runs[0]["users"], "seeds": list(configs), "runs": runs}
    for side in ("new", "warm"):
        out[side] = mean_and_sd([run[side] for run in runs], LOO_KEYS)
    return out


def format_new_users(result: dict) -> str:
    """The new-user protocol as a markdown table."""
    lines = [f"New users, {result.get('model', 'the default')}: {result['share']:.0%} of users "
             f"({result['users_per_seed']} per seed, drawn with each seed {result['seeds']}) left out of "
             "training, served by NCFService from their interactions in "
             "SQLite; the same users on the model trained with them (warm). Sampled: the test item among its 99 "
             "negatives (predict_batch); full: recommend's top 10 over every item they have not interacted with.",
             "", "| users | HR@10 sampled | NDCG@10 sampled | HR@10 full | NDCG@10 full |",
             "| --- | --- | --- | --- | --- |"]
    for side, label in (("new", "new to the checkpoint"), ("warm", "trained warm")):
        lines.append(f"| {label} | " + " | ".join(mean_sd_cell(result[side], k) for k in LOO_KEYS) + " |")
    return "\n".join(lines)
