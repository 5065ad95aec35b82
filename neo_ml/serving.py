"""What both models share: config fields and checks, per-caller rate limits and one log line per prediction.

``config_field`` declares a config dataclass field with its command-line help
(read by ``HfArgumentParser``); ``check_count``, ``check_number`` and
``check_list`` refuse a bad config value or request argument with one message.

``RateLimiter`` is a token bucket per caller: each caller may burst up to
``burst`` calls, refilled at ``rate`` calls per second; a call over the
limit raises ``RateLimitExceededError`` with the seconds to wait. Every
prediction call logs one INFO line on the ``neo_ml.predictions`` logger with
the call, its latency, the batch size and whether it was a cold start; never
a user id, an item id or a text. ``pruning_reporter`` is how either model's training
reports its epochs to an Optuna trial in a hyperparameter search.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import asdict, field, fields

from neo_ml.errors import InvalidRequestError, RateLimitExceededError, brief

predictions_log = logging.getLogger("neo_ml.predictions")


class RateLimiter:
    """A token bucket per caller. Buckets that have filled up again are forgotten once there are more than
    ``SWEEP_ABOVE`` callers, so memory follows the callers active in the last ``burst / rate`` seconds,
    not every caller ever seen (a full bucket is what a new caller gets anyway)."""

    SWEEP_ABOVE = 10_000

    def __init__(self, rate: float, burst: int | None = None, clock=time.monotonic):
        self.rate = float(check_number(rate, "rate", "> 0 calls per second (finite)"))
        self.burst = check_count(max(1, round(rate)) if burst is None else burst, "burst")
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, time of last refill)
        self._sweep_above = self.SWEEP_ABOVE
        self._lock = threading.Lock()

    def acquire(self, caller: str) -> None:
        """Take one token from ``caller``'s bucket, or raise RateLimitExceededError."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(caller, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[caller] = (tokens, now)
                raise RateLimitExceededError(caller, (1 - tokens) / self.rate)
            self._buckets[caller] = (tokens - 1, now)
            if len(self._buckets) > self._sweep_above:
                self._forget_full_buckets(now)

    def _forget_full_buckets(self, now: float) -> None:
        self._buckets = {caller: (tokens, last) for caller, (tokens, last) in self._buckets.items()
                         if tokens + (now - last) * self.rate < self.burst}
        self._sweep_above = max(self.SWEEP_ABOVE, 2 * len(self._buckets))  # amortised: sweeps stay rare

    def __len__(self) -> int:
        """How many callers' buckets are held."""
        return len(self._buckets)


def config_field(default, help: str, **more):
    """A config dataclass field with its help (and argparse extras such as ``aliases``). No ``choices``:
    the config's ``__post_init__`` refuses a bad value, with the message every other path gives."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **more})
    return field(default=default, metadata={"help": help, **more})


class ConfigMixin:
    """What every config dataclass offers: built from plain keys, given back as plain values."""

    @classmethod
    def from_mapping(cls, values: dict, source: str = "config"):
        """A config from plain keys (YAML, JSON, a notebook's dict); an unknown key is named with ``source``."""
        names = [f.name for f in fields(cls)]
        if not isinstance(values, dict):
            raise InvalidRequestError(f"{source}: expected a mapping of {cls.__name__} fields, "
                                      f"got {type(values).__name__}")
        unknown = sorted(map(str, set(values) - set(names)))
        if unknown:
            raise InvalidRequestError(f"{source}: unknown {cls.__name__} field(s) {brief(unknown)}; "
                                      f"expected some of {names}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


def check_number(value, name: str, wanted: str = "a finite number > 0", below: float = math.inf,
                 zero_allowed: bool = False) -> float:
    """``value`` if it is a number (not a bool) with 0 < value < ``below`` (0 <= value with
    ``zero_allowed``); InvalidRequestError otherwise."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not (0 <= value < below if zero_allowed else 0 < value < below)):
        raise InvalidRequestError(f"{name} must be {wanted}, got {brief(value)}")
    return value


def check_list(value, name: str, what: str = "ids") -> list:
    """``value``'s items as a list, read once: a generator or any other iterable is accepted, a string
    or a mapping is not."""
    if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
        raise InvalidRequestError(f"{name} must be a list of {what}, got {type(value).__name__}")
    return list(value)


def check_count(value, name: str, least: int = 1) -> int:
    """``value`` if it is an integer (not a bool) of at least ``least``; InvalidRequestError otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        wanted = {0: "a non-negative integer", 1: "a positive integer"}.get(least, f"an integer >= {least}")
        raise InvalidRequestError(f"{name} must be {wanted}, got {brief(value)}")
    return value


def check_top_k(top_k) -> None:
    check_count(top_k, "top_k")


def admit(limiter: RateLimiter | None, caller: str | None) -> float:
    """Apply the rate limit (when there is one) and return the call's start time."""
    if limiter is not None:
        limiter.acquire("anonymous" if caller is None else str(caller))
    return time.perf_counter()


def log_prediction(call: str, started: float, batch: int, cold_start: bool = False) -> None:
    if predictions_log.isEnabledFor(logging.INFO):
        predictions_log.info("%s latency_ms=%.3f batch=%d cold_start=%s", call,
                             (time.perf_counter() - started) * 1e3, batch, cold_start)


def pruning_reporter(trial, metric: str, history: list | None = None):
    """An ``on_epoch`` callback for a search trial: each epoch's record is appended to ``history`` and its
    ``metric`` reported to the trial at ``step=epoch``; a record the study's pruner stops raises
    ``optuna.TrialPruned``, which ends the training."""
    import optuna

    def report(record: dict) -> None:
        if history is not None:
            history.append(record)
        trial.report(record[metric], step=record["epoch"])
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {record['epoch']}: {metric} {record[metric]:.4f}")

    return report
