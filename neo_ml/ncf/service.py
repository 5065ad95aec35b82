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

New resources (a checkpoint with a text path, ``NCFConfig.item_text``): a
resource the checkpoint has no row for is scored from its text
(``ncf.new_resources``) once it is added with ``add_resources({id: text})``,
or, with a database, once it is in ``resources``: ``predict`` and
``predict_batch`` look an unknown id up there and embed it on first sight;
``recommend`` looks for new rows at most every ``resource_refresh_seconds``
(a COUNT query) and may return them. They are not read as history: a user's
taste comes from the checkpoint's items.

One service may be shared by many threads: the checkpoint loads once, and
every call only reads it. ``rate_limiter`` (``serving.RateLimiter``) limits
each ``caller``; every call logs one line on ``neo_ml.predictions`` with its
latency, batch size and cold-start flag, and no ids.
"""

from __future__ import annotations

import logging
import threading
import time
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
from neo_ml.ncf.new_resources import TextResources
from neo_ml.ncf.retrieval import RETRIEVAL_CHOICES, TWO_STAGE_ABOVE, ItemSearch
from neo_ml.serving import RateLimiter, admit, check_count, check_list, check_top_k, log_prediction
from neo_ml.tracking import fetch_model

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
                 retrieval: str = "auto", candidates: int = 200, nprobe: int = 128, device: str | None = None,
                 resource_refresh_seconds: float = 10.0, model_uri: str | None = None,
                 tracking_uri: str | None = None):
        if retrieval not in RETRIEVAL_CHOICES:
            raise InvalidRequestError(f"retrieval must be one of {RETRIEVAL_CHOICES}, got {brief(retrieval)}")
        if rate_limiter is not None and not isinstance(rate_limiter, RateLimiter):
            raise InvalidRequestError(f"rate_limiter must be a RateLimiter, got {type(rate_limiter).__name__}")
        if model_path is not None and not isinstance(model_path, str | Path):
            raise InvalidRequestError(f"model_path must be a path, got {type(model_path).__name__}")
        if model_uri is not None:  # a registered version: fetched now, verified when it loads, as any file
            if model_path is not None:
                raise InvalidRequestError("give model_path or model_uri, not both")
            model_path = fetch_model(model_uri, tracking_uri, suffix=".pt")
        self.model_path = Path(model_path) if model_path else paths.default_ncf_checkpoint()
        self.cold_start_threshold = check_count(cold_start_threshold, "cold_start_threshold", least=0)
        self.rate_limiter = rate_limiter
        self.candidates = check_count(candidates, "candidates")
        self.retrieval, self.nprobe = retrieval, check_count(nprobe, "nprobe")
        self.device = choose_device(device)
        if isinstance(db, Session):
            db = db.get_bind()
        self.store = database.InteractionStore(database.connect(db, create=False)) if db is not None else None
        if isinstance(resource_refresh_seconds, bool) or not isinstance(resource_refresh_seconds, int | float) \
                or not resource_refresh_seconds >= 0:
            raise InvalidRequestError(f"resource_refresh_seconds must be a number >= 0, got "
                                      f"{brief(resource_refresh_seconds)}")
        self.resource_refresh_seconds = float(resource_refresh_seconds)
        self.model = None
        self.new_resources: TextResources | None = None
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._resources_checked, self._resource_rows = -np.inf, -1

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
            if getattr(model, "text_projection", None) is not None:
                self.new_resources = TextResources(model)
            log.info("Loaded NCF %s from %s: %s", checkpoint["architecture"], self.model_path,
                     checkpoint["training_metrics"])
            self.model = model
        self._refresh_resources()

    def known_user_ids(self) -> list[str]:
        """The user ids the checkpoint was trained on, in its order."""
        self._load_model()
        return list(self.user_id_map)

    def known_item_ids(self) -> list[str]:
        """The item ids the service can score: the checkpoint's, in its order, then the resources added since."""
        self._load_model()
        added = self.new_resources.snapshot.ids.tolist() if self.new_resources is not None else []
        return self.item_ids.tolist() + added

    # -- new resources -------------------------------------------------------------------
    def add_resources(self, resources: dict[str, str]) -> int:
        """Serve each resource of ``resources`` (id -> text, e.g. "Title. Description") from its text, beside
        the checkpoint's items, until the next training; ids the checkpoint or an earlier call has are left
        as they are. Returns how many were added. Needs a checkpoint with a text path."""
        if not isinstance(resources, dict):
            raise InvalidRequestError(f"resources must be a dict of id -> text, got {type(resources).__name__}")
        texts = {}
        for item, text in resources.items():
            item = _check_id(item, "resource id")
            if not isinstance(text, str):
                raise InvalidRequestError(f"resource {brief(item)}: its text must be a string, got "
                                          f"{type(text).__name__}")
            texts[item] = text
        self._load_model()
        if self.new_resources is None:
            raise InvalidRequestError(f"{self.model_path}: this checkpoint has no text path, so it cannot serve "
                                      "resources it was not trained on; train a sasrec with item_text on data "
                                      "that has texts")
        return self.new_resources.add({k: v for k, v in texts.items() if k not in self.item_id_map})

    def _added(self):
        """The current snapshot of resources added since training (None without a text path)."""
        return self.new_resources.snapshot if self.new_resources is not None else None

    def _added_among(self, item_ids: list, added) -> list[str]:
        """The ids of ``item_ids`` served as resources added since training (in the ``added`` snapshot)."""
        if not added:
            return []
        return [str(i) for i in item_ids if str(i) in added.rows and str(i) not in self.item_id_map]

    def _discover(self, item_ids: list[str]) -> None:
        """Add the database resources among ``item_ids`` that nothing knows yet (embedded on first sight)."""
        added = self._added()
        if self.store is None or added is None:
            return
        unknown = [i for i in dict.fromkeys(item_ids) if i not in self.item_id_map and i not in added.rows]
        if unknown:
            self.new_resources.add(self.store.resource_texts(unknown))

    def _refresh_resources(self) -> None:
        """Every ``resource_refresh_seconds``, one COUNT of ``resources``; when it changed, add the new rows.
        One thread refreshes at a time; the others go on with the catalogue they have."""
        if self.store is None or self.new_resources is None:
            return
        if time.monotonic() - self._resources_checked < self.resource_refresh_seconds:
            return
        if not self._refresh_lock.acquire(blocking=False):
            return
        try:
            self._resources_checked = time.monotonic()
            rows = self.store.resource_count()
            if rows != self._resource_rows:
                self._discover(self.store.resource_ids())
                self._resource_rows = rows
        finally:
            self._refresh_lock.release()

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
    def _logits(self, user: int, history: torch.Tensor | None, items: np.ndarray,
                added_vectors: torch.Tensor | None = None) -> torch.Tensor:
        """The user's logits for ``items``, then for resources added since training (their ``added_vectors``;
        recommend scores through ``_recommend_known``)."""
        users = torch.tensor([user], device=self.device)
        history = None if history is None else history.to(self.device)
        vectors = self.model.user_vectors(users, history)
        logits = self.model.score(tuple(v.expand(len(items), -1) for v in vectors),
                                  torch.as_tensor(items, device=self.device))
        if added_vectors is not None:
            logits = torch.cat([logits, vectors[0][0] @ added_vectors.T])
        return logits.cpu()

    # -- public API ----------------------------------------------------------------------
    def predict(self, user_id: str, item_ids: list[str], caller: str | None = None) -> dict[str, float]:
        """Probability of interaction for each item. Unknown user or item: ColdStartError."""
        user_id, item_ids = _check_user(user_id), check_list(item_ids, "item_ids")
        started = admit(self.rate_limiter, caller)
        self._load_model()
        self._discover([str(i) for i in item_ids])
        added = set(self._added_among(item_ids, self._added()))
        unknown = [i for i in item_ids if str(i) not in self.item_id_map and str(i) not in added]
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
            self._discover([str(i) for i in item_ids])
            scores = self._score_known(user_id, item_ids, history)
        log_prediction("predict_batch", started, len(scores))
        return scores

    def _score_known(self, user_id: str, item_ids: list, given: list[str] | None = None) -> dict[str, float]:
        latest = self._latest_items(user_id, given) if self.model.history_length else []
        user = self._user_index(user_id, latest)
        if user is None:
            raise ColdStartError(f"unknown user {brief(user_id)}: the model has no embedding for it and no items "
                                 "of it to read; recommend() falls back to popular items")
        added = self._added()
        known = [str(i) for i in item_ids if str(i) in self.item_id_map]
        new = self._added_among(item_ids, added)
        if not known and not new:
            raise ColdStartError(f"none of the {len(item_ids)} item(s) asked for is known")
        items = np.fromiter((self.item_id_map[i] for i in known), dtype=np.int64, count=len(known))
        history = self._history(latest) if self.model.history_length else None
        logits = self._logits(user, history, items, added.vectors[[added.rows[i] for i in new]] if new else None)
        return dict(zip(known + new, _probabilities(logits).tolist(), strict=True))

    def recommend(self, user_id: str, top_k: int = 10, exclude_seen: bool = True,
                  caller: str | None = None, history: list[str] | None = None) -> list[tuple[str, float]]:
        """The ``top_k`` best items for the user, best first, without the ones already seen. ``history``:
        the user's item ids, oldest first, in place of the database's or the checkpoint's."""
        check_top_k(top_k)
        user_id, history = _check_user(user_id), _check_history(history)
        started = admit(self.rate_limiter, caller)
        self._load_model()
        self._refresh_resources()
        seen, seen_ids = self._user_items(user_id, history)
        user = self._user_index(user_id, seen)
        if user is None or len(set(seen)) < self.cold_start_threshold:
            ranked = self._handle_cold_start(user_id, top_k, self._excluded(seen, seen_ids) if exclude_seen else set())
            log_prediction("recommend", started, top_k, cold_start=True)
            return ranked
        # Scoring every item of a large catalogue is no small request: it keeps every thread.
        large = self.search.index is None and len(self.item_ids) > TWO_STAGE_ABOVE
        with nullcontext() if large else _one_thread():
            ranked = self._recommend_known([user], [seen], top_k, exclude_seen, [seen_ids])[0]
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
        self._refresh_resources()
        results: list = [None] * len(user_ids)
        known: list[tuple[int, int, list[int], list[str] | None]] = []  # (position, user, seen items, seen ids)
        for position, (user_id, given) in enumerate(zip(user_ids, histories, strict=True)):
            seen, seen_ids = self._user_items(user_id, given)
            user = self._user_index(user_id, seen)
            if user is None or len(set(seen)) < self.cold_start_threshold:
                excluded = self._excluded(seen, seen_ids) if exclude_seen else set()
                results[position] = self._handle_cold_start(user_id, top_k, excluded)
            else:
                known.append((position, user, seen, seen_ids))
        for start in range(0, len(known), chunk):
            part = known[start:start + chunk]
            ranked = self._recommend_known([k[1] for k in part], [k[2] for k in part], top_k, exclude_seen,
                                           [k[3] for k in part])
            for (position, *_), row in zip(part, ranked, strict=True):
                results[position] = row
        log_prediction("recommend_batch", started, len(user_ids) * top_k,
                       cold_start=len(known) < len(user_ids))
        return results

    @torch.no_grad()
    def _recommend_known(self, users: list[int], seen: list[list[int]], top_k: int, exclude_seen: bool,
                         seen_ids: list[list[str] | None]) -> list[list[tuple[str, float]]]:
        """Best items of known users (``ItemSearch``: every item scored, or retrieved candidates only), the
        resources added since training scored beside them (``seen_ids``: what each user saw, for those)."""
        history = None
        if self.model.history_length:
            history = torch.cat([self._history(items) for items in seen]).to(self.device)
        user_tensor = torch.tensor(users, device=self.device)
        masked = [sorted(set(items)) if exclude_seen else [] for items in seen]
        best = self.search.best(user_tensor, history, masked, top_k)
        ranked = [(self.item_ids[items.cpu().numpy()].tolist(), logits.cpu()) for items, logits in best]
        added = self._added()
        if added:
            new_logits = self.model.user_vectors(user_tensor, history)[0] @ added.vectors.T
            ranked = [self._merge_added(ids, logits, new_logits[row], added, seen_ids[row] if exclude_seen else None,
                                        top_k) for row, (ids, logits) in enumerate(ranked)]
        return [list(zip(ids, _probabilities(logits).tolist(), strict=True)) for ids, logits in ranked]

    @staticmethod
    def _merge_added(ids: list[str], logits: torch.Tensor, new_logits: torch.Tensor, added, seen: list[str] | None,
                     top_k: int) -> tuple[list[str], torch.Tensor]:
        """The ``top_k`` best of the checkpoint's ranked ``ids`` and the added resources, leaving out ``seen``."""
        new_logits = new_logits.cpu().clone()
        if seen:
            hidden = [added.rows[i] for i in seen if i in added.rows]
            new_logits[hidden] = -torch.inf
        top = torch.topk(new_logits, min(top_k, int(torch.isfinite(new_logits).sum())))
        every = torch.cat([logits, top.values])
        names = ids + added.ids[top.indices.numpy()].tolist()
        order = torch.topk(every, min(top_k, len(every))).indices
        return [names[i] for i in order.tolist()], every[order]

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
