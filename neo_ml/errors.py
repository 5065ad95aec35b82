"""Exceptions of the package: one base class, so callers can catch them all."""

from __future__ import annotations

import math
import reprlib

_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 60
_BRIEF.maxlist = _BRIEF.maxdict = _BRIEF.maxtuple = _BRIEF.maxset = 4


def brief(value) -> str:
    """``repr(value)`` cut to about 60 characters, with the full length of a long string: error messages
    name what was wrong without repeating a megabyte of it."""
    shown = _BRIEF.repr(value)
    if isinstance(value, str | bytes) and len(value) > 60:
        shown += f" ({len(value):,} characters)" if isinstance(value, str) else f" ({len(value):,} bytes)"
    return shown


class NeoMLError(Exception):
    """Base of every error this package raises on purpose."""


class DataFormatError(NeoMLError, ValueError):
    """Input data is malformed. Names the source, the record and the field."""

    def __init__(self, message: str, *, source: str | None = None,
                 record: int | str | None = None, field: str | None = None):
        self.source, self.record, self.field = source, record, field
        where = []
        if source is not None:
            where.append(str(source))
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class DataUnavailableError(NeoMLError):
    """A corpus could not be fetched or failed its checksum."""


class DatabaseError(NeoMLError):
    """The database could not be reached or refused a statement; names the database (password hidden)."""


class CheckpointError(NeoMLError):
    """A checkpoint is missing fields, corrupt or of an unknown version."""


class CheckpointIntegrityError(CheckpointError):
    """A checkpoint's bytes do not match its SHA-256 manifest: truncated, tampered with or half written."""


class TrainingDivergedError(NeoMLError):
    """The training loss became NaN or infinite; training stopped with nothing saved from that epoch."""

    @classmethod
    def check(cls, loss: float, epoch: int, batch: int, learning_rate: float, note: str = "") -> float:
        """``loss`` if finite; otherwise this error, naming the epoch, the batch and what to try."""
        if math.isfinite(loss):
            return loss
        raise cls(f"epoch {epoch}, batch {batch}: the training loss is {loss}; stopped. "
                  f"Lower the learning rate (now {learning_rate}) or check the data{note}")


class InvalidRequestError(NeoMLError, ValueError):
    """A service call with arguments outside their range (e.g. top_k <= 0, empty text)."""


class RateLimitExceededError(NeoMLError):
    """A caller made more prediction calls than its rate limit allows; retry after ``retry_after`` seconds."""

    def __init__(self, caller: str, retry_after: float):
        self.caller, self.retry_after = caller, retry_after
        super().__init__(f"rate limit exceeded for caller {brief(caller)}; retry in {retry_after:.3f} s")


class NCFModelNotFoundError(NeoMLError, FileNotFoundError):
    """No trained NCF checkpoint where the service looked."""

    def __init__(self, path):
        self.path = path
        super().__init__(
            f"No NCF model at {path}. Train one with: "
            f"python -m neo_ml.train_ncf --data ml-100k --output {path}"
        )


class ClassifierNotFoundError(CheckpointError, FileNotFoundError):
    """No classifier checkpoint folder where the service looked."""

    def __init__(self, folder):
        self.path = folder
        super().__init__(f"No classifier checkpoint at {folder}. Train one with: "
                         f"python -m neo_ml.train_classification --data 20ng --output {folder}")


class ColdStartError(NeoMLError, KeyError):
    """A score was asked for a user or item the model has never seen."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
