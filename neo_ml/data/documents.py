"""Reading JSON data files: the checks every loader shares, with errors that name file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neo_ml.errors import DataFormatError


def unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored or tokenized (a lone surrogate such as ``"\\ud800"``, legal in JSON), or
    None. Databases, tokenizers and UTF-8 files all refuse such strings, so they are refused at the door."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid Unicode: lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start}"
    return None


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file not found", source=str(path))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # bad syntax or bytes, a 5,000-digit integer, deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise DataFormatError(f"not valid JSON ({reason})", source=str(path)) from None


def records_and_metadata(document: Any, key: str, source: str) -> tuple[list, dict]:
    """The non-empty list under ``key`` and the optional ``metadata`` object of a document."""
    if not isinstance(document, dict):
        raise DataFormatError(f"expected a JSON object with '{key}'", source=source)
    rows = document.get(key)
    if rows is None:
        raise DataFormatError("missing", source=source, field=key)
    if not isinstance(rows, list):
        raise DataFormatError("expected a list", source=source, field=key)
    if not rows:
        raise DataFormatError("is empty; nothing to train on", source=source, field=key)
    metadata = document.get("metadata", {})
    if not isinstance(metadata, dict):
        raise DataFormatError("expected an object", source=source, field="metadata")
    return rows, metadata
