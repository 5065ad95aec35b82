"""Reading JSON data files: the checks every loader shares, with errors that name file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neo_ml.errors import DataFormatError


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("file not found", source=str(path))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"not valid JSON ({exc})", source=str(path)) from exc


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
