"""NCFService: serves a trained NCF checkpoint to the backend.

What each call does with ids it does not know:

==================  ==============================================================
``predict``         strict: a user it cannot read (not in the checkpoint and, for a
                    sequence model, no items anywhere) or any unknown item raises
                    ColdStartError
``predict_batch``   scores every known item; unknown items are left out of the
                    result; a user it cannot read, or no known item, raises ColdStartError
``recommend``       an unknown user (or one with fewer than ``cold_start_threshold``
                    interactions) gets the most popular items (``_handle_cold_start``);
                    a sequence model (sasrec) reads any user with items, in the
                    database or in ``history``, known to the checkpoint or not
``recommend_batch`` ``recommend`` for many users at once, one list per user
==================  ==============================================================

Large catalogues (``retrieval``): "exact" scores every item with the full
model; "ivf" (FAISS) or "matmul" first retrieve ``candidates`` items by an inner
product that estimates the model's score (``ncf.retrieval``), search a second
time around the best of them, and score only those with the full model.
"auto", the default, is exact up to ``retrieval.TWO_STAGE_ABOVE`` items and ivf beyond:
on a synthetic catalogue of 1M items its top 10 held 99.7 % of the exact top
10 at a p95 of 11.5 ms (README, "Scale").

Scores are probabilities (the sigmoid of the model's logit, computed in float64
so that confident items do not tie at 1.0); higher is better.

Seen items and the user's latest items come from the database when one is
given (fresh, one indexed query per call), else from the data the checkpoint
was trained on.

One service may be shared by many threads: the checkpoint loads once, and
every call only reads it. ``rate_limiter`` (``serving.RateLimiter``) limits
each ``caller``; every call logs one line on ``neo_ml.predictions`` with its
latency, batch size and cold-start flag, and no ids.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from neo_ml import paths
from neo_ml.data import db as database
from neo_ml.data.documents import unicode_problem
from neo_ml.devices import choose_device
from neo_ml.errors import ColdStartError, InvalidRequestError, brief
from neo_ml.ncf.checkpoint import load_ncf_checkpoint, model_from_checkpoint
from neo_ml.ncf.retrieval import RETRIEVAL_CHOICES, TWO_STAGE_ABOVE, ItemSearch
from neo_ml.serving import RateLimiter, admit, check_count, check_list, check_top_k, log_prediction

log = logging.getLogger(__name__)


def _check_id(value, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRequestError(f"{name} must be a string or an integer, got {type(value).__name__}")
    value = str(value)
    problem = unicode_problem(value)
    if problem:  # no database or checkpoint can hold such an id
        raise InvalidRequestError(f"{name} {brief(value)}: {problem}")
    return value


def _check_user(user_id) -> str:
    return _check_id(user_id, "user_id")


def _check_history(history) -> list[str] | None:
    """A caller's history: item ids, oldest first (None: the database's or the checkpoint's)."""
    return None if history is None else [_check_id(i, "history item") for i in check_list(history, "history")]


@contextmanager
def _one_thread():
    """One intra-op thread for the calling thread while a one-user request runs: its ops are small, and a
    second thread only adds wake-ups (p95 of ``predict_batch`` in a notebook kernel: 1.81 ms with two over
    the first few hundred calls, 0.77 ms with one). OpenMP keeps the setting per thread, so concurrent
    callers do not see each other's."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _probabilities(logits: torch.Tensor) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.numpy().astype(np.float64)))


class NCFService:
    def __init__(self, db: Session | Engine | str | None = None, model_path: str | Path | None = None,
                 cold_start_threshold: int = 1, rate_limiter: RateLimiter | None = None,
                 retrieval: str = "auto", candidates: int = 200, nprobe: int = 128, device: str | None = None):
        if retrieval not in RETRIEVAL_CHOICES:
            raise InvalidRequestError(f"retrieval must be one of {RETRIEVAL_CHOICES}, got {brief(retrieval)}")
        if rate_limiter is not None and not isinstance(rate_limiter, RateLimiter):
            raise InvalidRequestError(f"rate_limiter must be a RateLimiter, got {type(rate_limiter).__name__}")
        if model_path is not None and not isinstance(model_path, str | Path):
            raise InvalidRequestError(f"model_path must be a path, got {type(model_path).__name__}")
        self.model_path = Path(model_path) if model_path else paths.default_ncf_checkpoint()
        self.cold_start_threshold = check_count(cold_start_threshold, "cold_start_threshold", least=0)
        self.rate_limiter = rate_limiter
        self.candidates = check_count(candidates, "candidates")
        self.retrieval, self.nprobe = retrieval, check_count(nprobe, "nprobe")
        self.device = choose_device(device)
        if isinstance(db, Session):
            db = db.get_bind()
        self.store = database.InteractionStore(database.connect(db, create=False)) if db is not None else None
        self.model = None
        self._lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------
    def _load_model(self) -> None:
        """Load and cache the checkpoint on first use (thread-safe)."""
        if self.model is not None:
            return
        with self._lock:
            if self.model is not None:
                return
            checkpoint = load_ncf_checkpoint(self.model_path)
            self.user_id_map: dict[str, int] = checkpoint["user_id_map"]
            self.item_id_map: dict[str, int] = checkpoint["item_id_map"]
            self.item_ids = np.array(sorted(self.item_id_map, key=self.item_id_map.get), dtype=object)
            self._indptr = checkpoint["user_items_indptr"].numpy()
            self._items_flat = checkpoint["user_items"].numpy()
            self._popularity = checkpoint["item_popularity"].numpy()
            model = model_from_checkpoint(checkpoint).to(self.device)
            model.set_item_prior(self._popularity)  # retrieval linearises at the typical taken item
            self.search = ItemSearch(model, self.retrieval, self.candidates, self.nprobe)
            log.info("Loaded NCF %s from %s: %s", checkpoint["architecture"], self.model_path,
                     checkpoint["training_metrics"])
            self.model = model

    def known_user_ids(self) -> list[str]:
        """The user ids the checkpoint was trained on, in its order."""
        self._load_model()
        return list(self.user_id_map)

    def known_item_ids(self) -> list[str]:
        """The item ids the checkpoint can score, in its order."""
        self._load_model()
        return self.item_ids.tolist()

    # -- per-user context ----------------------------------------------------------------
    def _user_items(self, user_id: str, history: list[str] | None = None) -> tuple[list[int], list[str] | None]:
        """The user's item indices the model knows, oldest first, and (from a database or ``history``) the
        ids of every item they have seen, known to the model or not (None from the checkpoint: the model
        knows them all). ``history``, the caller's item ids oldest first, stands for the user's items."""
        if history is not None:
            index = self.item_id_map
            return [index[i] for i in history if i in index], history
        if self.store is not None:
            index, seen = self.item_id_map, self.store.items_of(user_id)
            return [index[i] for i in seen if i in index], seen
        user = self.user_id_map.get(user_id)
        if user is None:
            return [], None
        return self._items_flat[self._indptr[user]:self._indptr[user + 1]].tolist(), None

    def _latest_items(self, user_id: str, history: list[str] | None = None) -> list[int]:
        """Enough of the user's latest items to fill the history, oldest first."""
        if self.store is None or history is not None:
            return self._user_items(user_id, history)[0]
        index = self.item_id_map
        # Twice the length leaves room for repeats and items the model does not know.
        latest = self.store.latest_items_of(user_id, 2 * self.model.history_length)
        return [index[i] for i in reversed(latest) if i in index]

    def _history(self, items: list[int]) -> torch.Tensor | None:
        length = self.model.history_length
        if not length:
            return None
        latest = list(dict.fromkeys(reversed(items)))[:length]  # newest first, no repeats
        row = latest + [self.model.num_items] * (length - len(latest))
        return torch.tensor([row], dtype=torch.int64)

    def _user_index(self, user_id: str, items: list[int]) -> int | None:
        """The model's index for the user: their own, or, for a model that reads users from their history
        (a sequence model), the newcomer index ``num_users`` when they have items; None otherwise."""
        user = self.user_id_map.get(str(user_id))
        if user is None and self.model.sequence_model and items:
            return self.model.num_users
        return user

    @torch.no_grad()
    def _logits(self, user: int, history: torch.Tensor | None, items: np.ndarray) -> torch.Tensor:
        """The user's logits for ``items`` (recommend scores through ``_recommend_known``)."""
        users = torch.tensor([user], device=self.device)
        history = None if history is None else history.to(self.device)
        vectors = tuple(v.expand(len(items), -1) for v in self.model.user_vectors(users, history))
        return self.model.score(vectors, torch.as_tensor(items, device=self.device)).cpu()

    # -- public API ----------------------------------------------------------------------
    def predict(self, user_id: str, item_ids: list[str], caller: str | None = None) -> dict[str, float]:
        """Probability of interaction for each item. Unknown user or item: ColdStartError."""
        user_id, item_ids = _check_user(user_id), check_list(item_ids, "item_ids")
        started = admit(self.rate_limiter, caller)
        self._load_model()
        unknown = [i for i in item_ids if str(i) not in self.item_id_map]
        if unknown:
            raise ColdStartError(f"{len(unknown)} unknown item(s), e.g. {brief(unknown[0])}: "
                                 "not in the model's training data")
        with _one_thread():
            scores = self._score_known(user_id, item_ids)
        log_prediction("predict", started, len(scores))
        return scores

    def predict_batch(self, user_id: str, item_ids: list[str], caller: str | None = None,
                      history: list[str] | None = None) -> dict[str, float]:
        """Scores for every known item in one forward pass; unknown items are left out. ``history``: the
        user's item ids, oldest first, in place of the database's or the checkpoint's."""
        user_id, item_ids = _check_user(user_id), check_list(item_ids, "item_ids")
        history = _check_history(history)
        started = admit(self.rate_limiter, caller)
        self._load_model()
        with _one_thread():
            scores = self._score_known(user_id, item_ids, history)
        log_prediction("predict_batch", started, len(scores))
        return scores

    def _score_known(self, user_id: str, item_ids: list, given: list[str] | None = None) -> dict[str, float]:
        latest = self._latest_items(user_id, given) if self.model.history_length else []
        user = self._user_index(user_id, latest)
        if user is None:
            raise ColdStartError(f"unknown user {brief(user_id)}: the model has no embedding for it and no items "
                                 "of it to read; recommend() falls back to popular items")
        known = [str(i) for i in item_ids if str(i) in self.item_id_map]
        if not known:
            raise ColdStartError(f"none of the {len(item_ids)} item(s) asked for is known")
        items = np.fromiter((self.item_id_map[i] for i in known), dtype=np.int64, count=len(known))
        history = self._history(latest) if self.model.history_length else None
        scores = _probabilities(self._logits(user, history, items))
        return dict(zip(known, scores.tolist(), strict=True))

    def recommend(self, user_id: str, top_k: int = 10, exclude_seen: bool = True,
                  caller: str | None = None, history: list[str] | None = None) -> list[tuple[str, float]]:
        """The ``top_k`` best items for the user, best first, without the ones already seen. ``history``:
        the user's item ids, oldest first, in place of the database's or the checkpoint's."""
        check_top_k(top_k)
        user_id, history = _check_user(user_id), _check_history(history)
        started = admit(self.rate_limiter, caller)
        self._load_model()
        seen, seen_ids = self._user_items(user_id, history)
        user = self._user_index(user_id, seen)
        if user is None or len(set(seen)) < self.cold_start_threshold:
            ranked = self._handle_cold_start(user_id, top_k, self._excluded(seen, seen_ids) if exclude_seen else set())
            log_prediction("recommend", started, top_k, cold_start=True)
            return ranked
        # Scoring every item of a large catalogue is no small request: it keeps every thread.
        large = self.search.index is None and len(self.item_ids) > TWO_STAGE_ABOVE
        with nullcontext() if large else _one_thread():
            ranked = self._recommend_known([user], [seen], top_k, exclude_seen)[0]
        log_prediction("recommend", started, top_k)
        return ranked

    def recommend_batch(self, user_ids: list[str], top_k: int = 10, exclude_seen: bool = True,
                        caller: str | None = None, chunk: int = 64,
                        history: list[list[str]] | None = None) -> list[list[tuple[str, float]]]:
        """``recommend`` for each user, in order; known users are scored ``chunk`` at a time. ``history``:
        one list of item ids (oldest first) per user, in place of the database's or the checkpoint's."""
        check_top_k(top_k)
        check_count(chunk, "chunk")
        user_ids = [_check_user(u) for u in check_list(user_ids, "user_ids")]
        histories = [None] * len(user_ids) if history is None else [
            _check_history(h) for h in check_list(history, "history", "lists of item ids")]
        if len(histories) != len(user_ids):
            raise InvalidRequestError(f"history has {len(histories)} lists for {len(user_ids)} users")
        started = admit(self.rate_limiter, caller)
        self._load_model()
        results: list = [None] * len(user_ids)
        known: list[tuple[int, int, list[int]]] = []  # (position, user index, seen items)
        for position, (user_id, given) in enumerate(zip(user_ids, histories, strict=True)):
            seen, seen_ids = self._user_items(user_id, given)
            user = self._user_index(user_id, seen)
            if user is None or len(set(seen)) < self.cold_start_threshold:
                excluded = self._excluded(seen, seen_ids) if exclude_seen else set()
                results[position] = self._handle_cold_start(user_id, top_k, excluded)
            else:
                known.append((position, user, seen))
        for start in range(0, len(known), chunk):
            part = known[start:start + chunk]
            ranked = self._recommend_known([u for _, u, _ in part], [s for _, _, s in part], top_k, exclude_seen)
            for (position, _, _), row in zip(part, ranked, strict=True):
                results[position] = row
        log_prediction("recommend_batch", started, len(user_ids) * top_k,
                       cold_start=len(known) < len(user_ids))
        return results

    @torch.no_grad()
    def _recommend_known(self, users: list[int], seen: list[list[int]], top_k: int,
                         exclude_seen: bool) -> list[list[tuple[str, float]]]:
        """Best items of known users (``ItemSearch``: every item scored, or retrieved candidates only)."""
        history = None
        if self.model.history_length:
            history = torch.cat([self._history(items) for items in seen]).to(self.device)
        user_tensor = torch.tensor(users, device=self.device)
        masked = [sorted(set(items)) if exclude_seen else [] for items in seen]
        return [list(zip(self.item_ids[items.cpu().numpy()].tolist(), _probabilities(logits.cpu()).tolist(),
                         strict=True))
                for items, logits in self.search.best(user_tensor, history, masked, top_k)]

    def _excluded(self, seen: list[int], seen_ids: list[str] | None) -> set[str]:
        return set(seen_ids if seen_ids is not None else self.item_ids[seen].tolist())

    def _handle_cold_start(self, user_id: str, top_k: int, excluded: set[str]) -> list[tuple[str, float]]:
        """Most popular items the model knows (database counts when a database is given), without
        ``excluded``, scored count / top count. An item the model does not know is never returned."""
        wanted = min(top_k, len(self.item_ids))  # also keeps a huge top_k out of SQL's 64-bit LIMIT
        if self.store is not None:
            ranked = self._popular_in_database(wanted, excluded)
        else:
            order = np.lexsort((np.arange(len(self._popularity)), -self._popularity))
            ranked = [(self.item_ids[i], int(self._popularity[i])) for i in order[:wanted + len(excluded)]]
            ranked = [(item, count) for item, count in ranked if item not in excluded][:wanted]
        top = max((count for _, count in ranked), default=1) or 1
        return [(item, count / top) for item, count in ranked]

    def _popular_in_database(self, wanted: int, excluded: set[str]) -> list[tuple[str, int]]:
        """The database's most popular items, kept when the model knows them and they are not excluded;
        asks for more rows until ``wanted`` are found or the database has no more."""
        limit = wanted + len(excluded)
        while True:
            rows = self.store.popular(limit)
            ranked = [(item, count) for item, count in rows if item in self.item_id_map and item not in excluded]
            if len(ranked) >= wanted or len(rows) < limit:
                return ranked[:wanted]
            limit *= 4
