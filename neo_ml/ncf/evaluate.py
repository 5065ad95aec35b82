"""Ranking metrics: HR@k and NDCG@k, sampled and full ranking, ties against the model."""

from __future__ import annotations

import numpy as np
import torch

LOO_KEYS = ("hr@10", "ndcg@10", "hr@10_full", "ndcg@10_full")  # evaluate_model's figures at k = 10


def hit_rate_and_ndcg(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Mean HR@k and NDCG@k from 0-based ranks of the held-out item."""
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        return float("nan"), float("nan")
    hits = ranks < k
    ndcg = np.where(hits, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(hits.mean()), float(ndcg.mean())


def ranks_against_candidates(target_scores: np.ndarray, candidate_scores: np.ndarray) -> np.ndarray:
    """0-based rank of each target among its candidates; a tie counts against the target."""
    return (candidate_scores >= target_scores[:, None]).sum(axis=1)


def _device_of(model) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def sampled_ranks(model, users: np.ndarray, targets: np.ndarray, negatives: np.ndarray,
                  history: np.ndarray | None = None, chunk: int = 4096) -> np.ndarray:
    """Rank of each user's target item among that user's sampled negatives (``chunk`` users at a time).

    ``history`` holds one row per entry of ``users`` (see NCF models).
    """
    model.eval()
    device = _device_of(model)
    candidates = np.concatenate([targets[:, None], negatives], axis=1)
    width = candidates.shape[1]
    scores = np.empty(candidates.shape, dtype=np.float32)
    for start in range(0, len(users), chunk):  # each user read once, then scored against its candidates
        part = slice(start, start + chunk)
        u = torch.as_tensor(users[part], device=device)
        h = None if history is None else torch.as_tensor(history[part], device=device)
        vectors = tuple(v.repeat_interleave(width, dim=0) for v in model.user_vectors(u, h))
        items = torch.as_tensor(candidates[part].reshape(-1), device=device)
        scores[part] = model.score(vectors, items).view(-1, width).cpu().numpy()
    return ranks_against_candidates(scores[:, 0], scores[:, 1:])


@torch.no_grad()
def full_ranks(model, users: np.ndarray, targets: np.ndarray, exclude: np.ndarray,
               history: np.ndarray | None = None, chunk: int = 128) -> np.ndarray:
    """Rank of each target among all items, minus the (user, item) pairs in ``exclude``.

    ``exclude`` holds (user, item) rows, normally the training interactions.
    """
    model.eval()
    device = _device_of(model)
    ranks = np.empty(len(users), dtype=np.int64)
    order = np.argsort(exclude[:, 0], kind="stable")
    ex_users, ex_items = exclude[order, 0], exclude[order, 1]
    for start in range(0, len(users), chunk):
        batch = users[start:start + chunk]
        h = None if history is None else torch.as_tensor(history[start:start + chunk], device=device)
        scores = model.score_all_items(torch.as_tensor(batch, device=device), h).cpu().numpy().astype(np.float64)
        lo = np.searchsorted(ex_users, batch, side="left")
        hi = np.searchsorted(ex_users, batch, side="right")
        for row, (a, b) in enumerate(zip(lo, hi, strict=True)):
            scores[row, ex_items[a:b]] = -np.inf
        rows = np.arange(len(batch))
        target = scores[rows, targets[start:start + chunk]].copy()
        scores[rows, targets[start:start + chunk]] = -np.inf  # the target is not its own rival
        ranks[start:start + chunk] = ranks_against_candidates(target, scores)
    return ranks


def evaluate_model(model, split, which: str = "test", k: int = 10,
                   full: bool = True, users: np.ndarray | None = None) -> dict[str, float]:
    """HR@k and NDCG@k of ``model`` on a LeaveOneOutSplit's validation or test item.

    Sampled: the held-out item among its 99 saved negatives. Full: among every
    item the user has no training interaction with. A history-aware model sees
    the user's items before the held-out one (for test, the validation item too).
    ``users``: only these user indices (default: every user with a held-out item).
    """
    items = split.test_items if which == "test" else split.validation_items
    negatives = split.test_negatives if which == "test" else split.validation_negatives
    users = np.flatnonzero(items >= 0) if users is None else np.asarray(users, dtype=np.int64)
    length = getattr(model, "history_length", 0)
    history = split.history_for(which, length)[users] if length else None
    ranks = sampled_ranks(model, users, items[users], negatives[users], history)
    hr, ndcg = hit_rate_and_ndcg(ranks, k)
    metrics = {f"hr@{k}": hr, f"ndcg@{k}": ndcg}
    if full:
        ranks = full_ranks(model, users, items[users], split.train, history)
        hr_f, ndcg_f = hit_rate_and_ndcg(ranks, k)
        metrics |= {f"hr@{k}_full": hr_f, f"ndcg@{k}_full": ndcg_f}
    return metrics


def ndcg_at_k(ranked: list, relevant: set, k: int = 10) -> float:
    """Binary-relevance NDCG@k of one ranked list (ideal DCG over min(|relevant|, k) items)."""
    dcg = sum(1.0 / np.log2(r + 2) for r, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


@torch.no_grad()
def evaluate_held_out(model, cases, users, items, history: np.ndarray | None, k: int = 10) -> dict:
    """HR@k and NDCG@k over held-out cases (the backend's ``held_out_test``).

    Each case ranks its own candidate items; a hit is any relevant item in the
    top k. Cases whose user is unknown to the model, or with no known relevant
    item, are counted and skipped.
    """
    model.eval()
    device = _device_of(model)
    hits, ndcgs, skipped = [], [], 0
    for case in cases:
        user = users.index.get(case.user_id)
        candidates = [i for i in dict.fromkeys(case.candidate_items) if i in items.index]
        relevant = {i for i in case.relevant_items if i in items.index}
        if user is None or not relevant or not candidates:
            skipped += 1
            continue
        idx = torch.as_tensor(items.encode(candidates), device=device)
        h = None if history is None else torch.as_tensor(history[user], device=device).expand(len(candidates), -1)
        logits = model(torch.full((len(candidates),), user, device=device), idx, h).cpu().numpy()
        ranked = [candidates[j] for j in np.argsort(-logits, kind="stable")]
        hits.append(float(any(item in relevant for item in ranked[:k])))
        ndcgs.append(ndcg_at_k(ranked, relevant, k))
    return {f"held_out_hr@{k}": float(np.mean(hits)) if hits else float("nan"),
            f"held_out_ndcg@{k}": float(np.mean(ndcgs)) if ndcgs else float("nan"),
            "held_out_cases": len(hits), "held_out_skipped": skipped}


def top_k_metrics(recommended: list[list], relevant: list[set], k: int = 10) -> dict[str, float]:
    """NDCG, Precision, Recall and MAP at k as Microsoft Recommenders defines them.

    Binary relevance; NDCG's ideal DCG covers min(|relevant|, k) items; MAP@k
    divides each user's summed precision-at-hit by min(|relevant|, k)
    (``recommenders.evaluation.python_evaluation.map_at_k``). Users with no
    relevant item are left out.
    """
    ndcg, precision, recall, average_precision = [], [], [], []
    for ranked, truth in zip(recommended, relevant, strict=True):
        if not truth:
            continue
        hits = [item in truth for item in ranked[:k]]
        ranks = np.flatnonzero(hits) + 1
        ndcg.append(ndcg_at_k(ranked, truth, k))
        precision.append(len(ranks) / k)
        recall.append(len(ranks) / len(truth))
        average_precision.append(sum((n + 1) / r for n, r in enumerate(ranks)) / min(len(truth), k))
    return {f"ndcg@{k}": float(np.mean(ndcg)), f"precision@{k}": float(np.mean(precision)),
            f"recall@{k}": float(np.mean(recall)), f"map@{k}": float(np.mean(average_precision))}
