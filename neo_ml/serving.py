"""What both services share when serving: per-caller rate limits and one log line per prediction.

``RateLimiter`` is a token bucket per caller: each caller may burst up to
``burst`` calls, refilled at ``rate`` calls per second; a call over the
limit raises ``RateLimitExceededError`` with the seconds to wait. Every
prediction call logs one INFO line on the ``neo_ml.predictions`` logger with
the call, its latency, the batch size and whether it was a cold start; never
a user id, an item id or a text.
"""

from __future__ import annotations

import logging
import threading
import time

from neo_ml.errors import InvalidRequestError, RateLimitExceededError

predictions_log = logging.getLogger("neo_ml.predictions")


class RateLimiter:
    def __init__(self, rate: float, burst: int | None = None, clock=time.monotonic):
        if not rate > 0:
            raise InvalidRequestError(f"rate must be > 0 calls per second, got {rate!r}")
        self.rate, self.burst, self.clock = float(rate), int(burst or max(1, round(rate))), clock
        if self.burst < 1:
            raise InvalidRequestError(f"burst must be >= 1, got {burst!r}")
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, time of last refill)
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


def admit(limiter: RateLimiter | None, caller: str | None) -> float:
    """Apply the rate limit (when there is one) and return the call's start time."""
    if limiter is not None:
        limiter.acquire("anonymous" if caller is None else str(caller))
    return time.perf_counter()


def log_prediction(call: str, started: float, batch: int, cold_start: bool = False) -> None:
    if predictions_log.isEnabledFor(logging.INFO):
        predictions_log.info("%s latency_ms=%.3f batch=%d cold_start=%s", call,
                             (time.perf_counter() - started) * 1e3, batch, cold_start)
