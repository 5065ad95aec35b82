"""The new-resource protocol: items nobody had taken at training time, recommended from their text.

A seeded share of MovieLens-100k's items (``NEW_ITEM_SHARE``) loses every training interaction
(``LeaveOneOutSplit.without_item_interactions``); validation, test and the saved negatives stay as they
are. A model trained on that split meets those items as a library meets new acquisitions. Two views:

- **NCF-LOO, new test items**: the users whose test item is one of the new items, their test item
  among its 99 saved negatives (sampled) and among every item (full), as in the main table;
- **among the new items only**: each user who took any new item ranks the new items alone from their
  training history; the relevant items are every new item they took (Recall@10, NDCG@10).

Random, popularity (a new item has no interactions, so it never ranks) and a content kNN over the
same sentence embeddings (a user is the mean of their items' unit vectors) are scored the same way.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from neo_ml.bench.timing import figures, mean_and_sd, mean_sd_cell
from neo_ml.data.splits import LeaveOneOutSplit
from neo_ml.ncf.baselines import PopularityModel
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.evaluate import LOO_KEYS, evaluate_model, top_k_metrics
from neo_ml.ncf.text_path import without_text_path
from neo_ml.ncf.train import train_ncf_model

NEW_ITEM_SHARE = 0.2
AMONG_NEW_KEYS = ("recall@10", "ndcg@10")


def pick_new_items(split: LeaveOneOutSplit, share: float, seed: int) -> np.ndarray:
    """A seeded ``share`` of the items, as sorted item indices."""
    count = max(1, round(share * split.num_items))
    return np.sort(np.random.default_rng(seed).choice(split.num_items, count, replace=False))


class ContentKNN(nn.Module):
    """A user is the mean unit text vector of their latest ``history_length`` items; an item's score is
    its cosine with it. Needs no training: the content-based baseline."""

    def __init__(self, item_text: np.ndarray, history_length: int = 200):
        super().__init__()
        unit = item_text / np.maximum(np.linalg.norm(item_text, axis=1, keepdims=True), 1e-12)
        self.num_items, self.history_length = len(item_text), history_length
        self.register_buffer("items", torch.as_tensor(np.vstack([unit, np.zeros((1, unit.shape[1]))]),
                                                      dtype=torch.float32))  # the pad row is zero

    def user_vectors(self, users, history=None):
        taken = (history != self.num_items).sum(1, keepdim=True).clamp(min=1)
        return (self.items[history].sum(1) / taken,)

    def score(self, vectors, items) -> torch.Tensor:
        return (vectors[0] * self.items[items]).sum(-1)

    def score_all_items(self, users, history=None) -> torch.Tensor:
        return self.user_vectors(users, history)[0] @ self.items[:self.num_items].T


class RandomScorer(nn.Module):
    """A seeded random score for each (user row, item) asked: the floor every model must clear."""

    history_length = 0

    def __init__(self, num_items: int, seed: int = 0):
        super().__init__()
        self.num_items, self.generator = num_items, torch.Generator().manual_seed(seed)

    def user_vectors(self, users, history=None):
        return (torch.zeros(len(users), 0),)

    def score(self, vectors, items) -> torch.Tensor:
        return torch.rand(items.shape, generator=self.generator)

    def score_all_items(self, users, history=None) -> torch.Tensor:
        return torch.rand((len(users), self.num_items), generator=self.generator)


def users_with_new_test_items(split: LeaveOneOutSplit, new_items: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(split.test_items, new_items))


@torch.no_grad()
def among_new_items(model, split: LeaveOneOutSplit, cold: LeaveOneOutSplit, new_items: np.ndarray,
                    k: int = 10) -> dict[str, float]:
    """Recall@k and NDCG@k of the new items alone, ranked for each user who took any of them (train,
    validation or test of ``split``), from their training history in ``cold``."""
    taken = split.all_pairs()
    taken = taken[np.isin(taken[:, 1], new_items)]
    users = np.unique(taken[:, 0])
    relevant = [set(taken[taken[:, 0] == user, 1].tolist()) for user in users]
    length = getattr(model, "history_length", 0)
    history = cold.history_for("validation", length)[users] if length else None
    ranked = []
    for start in range(0, len(users), 256):
        part = torch.as_tensor(users[start:start + 256])
        rows = None if history is None else torch.as_tensor(history[start:start + 256])
        scores = model.score_all_items(part, rows)[:, torch.as_tensor(new_items)]
        best = torch.topk(scores, min(k, len(new_items)), dim=1).indices.numpy()
        ranked += [new_items[row].tolist() for row in best]
    return {**top_k_metrics(ranked, relevant, k), "users": len(users)}


def evaluate_on_new_items(model, split: LeaveOneOutSplit, cold: LeaveOneOutSplit, new_items: np.ndarray) -> dict:
    """NCF-LOO figures of the users whose test item is new, the ranking among the new items only, and the
    NCF-LOO figures of the other users (``warm_``), whose lists the new items now compete for."""
    users = users_with_new_test_items(cold, new_items)
    warm = np.setdiff1d(np.flatnonzero(cold.test_items >= 0), users)
    loo = evaluate_model(model, cold, "test", users=users)
    among = among_new_items(model, split, cold, new_items)
    return {**loo, **{f"new_{key}": value for key, value in among.items()},
            **{f"warm_{key}": value for key, value in evaluate_model(model, cold, "test", users=warm).items()}}


def new_item_run(split: LeaveOneOutSplit, item_text: np.ndarray, config: NCFConfig, seed: int,
                 name: str, text_off_name: str, share: float = NEW_ITEM_SHARE) -> dict:
    """One draw of new items (``seed``): the baselines, and ``config`` trained on the split without their
    interactions (``name``; ``text_off_name``: the same model read without its text path), scored on them."""
    new_items = pick_new_items(split, share, seed)
    cold = split.without_item_interactions(new_items)
    scorers = {"Random": RandomScorer(split.num_items, seed),
               "Popularity": PopularityModel(cold.train, split.num_items),
               "Content kNN (MiniLM)": ContentKNN(item_text)}
    out = {"new_items": len(new_items), "test_users": len(users_with_new_test_items(cold, new_items)), "models": {}}
    for baseline, scorer in scorers.items():
        out["models"][baseline] = evaluate_on_new_items(scorer, split, cold, new_items)
    trained = train_ncf_model(cold, config, progress=False, item_text=item_text)
    out["models"][name] = {**evaluate_on_new_items(trained.model, split, cold, new_items),
                           "best_epoch": trained.best_epoch, "train_seconds": trained.train_seconds,
                           "text_seconds": trained.text_seconds}
    out["models"][text_off_name] = evaluate_on_new_items(without_text_path(trained.model), split, cold, new_items)
    for shown, row in out["models"].items():
        print(f"  new items seed {seed} {shown:28s}: {figures(row, LOO_KEYS)}  among new: "
              f"{figures(row, tuple('new_' + key for key in AMONG_NEW_KEYS))}", file=sys.stderr)
    return out


def benchmark_new_items(split: LeaveOneOutSplit, item_text: np.ndarray, configs_by_seed: dict[int, NCFConfig],
                        name: str, text_off_name: str, share: float = NEW_ITEM_SHARE) -> dict:
    """``new_item_run`` per seed (each its own draw of items), mean and sd per model."""
    runs = [new_item_run(split, item_text, config, seed, name, text_off_name, share)
            for seed, config in configs_by_seed.items()]
    keys = (*LOO_KEYS, *(f"new_{key}" for key in AMONG_NEW_KEYS), *(f"warm_{key}" for key in LOO_KEYS))
    models = {name: mean_and_sd([run["models"][name] for run in runs], keys) for name in runs[0]["models"]}
    return {"share": share, "seeds": list(configs_by_seed), "new_items": runs[0]["new_items"],
            "test_users": [run["test_users"] for run in runs], "models": models, "runs": runs}


def format_new_items(result: dict) -> str:
    """The new-resource protocol as a markdown table."""
    lines = [f"New resources: {result['share']:.0%} of the items ({result['new_items']}, drawn with each seed "
             f"{result['seeds']}) with every training interaction removed. NCF-LOO columns: the users whose test "
             f"item is new ({', '.join(map(str, result['test_users']))} per seed), sampled and full; among new: "
             "the new items alone ranked for every user who took one (all they took are relevant); warm users: "
             "the others, whose lists the new items now compete for.",
             "", "| model | HR@10 sampled | NDCG@10 sampled | HR@10 full | NDCG@10 full | Recall@10 among new | "
             "NDCG@10 among new | warm users: HR@10 sampled | warm users: HR@10 full |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    keys = (*LOO_KEYS, *(f"new_{key}" for key in AMONG_NEW_KEYS), "warm_hr@10", "warm_hr@10_full")
    for name, row in result["models"].items():
        lines.append(f"| {name} | " + " | ".join(mean_sd_cell(row, key) for key in keys) + " |")
    return "\n".join(lines)
