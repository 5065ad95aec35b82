"""Interaction data from JSON files: the seed's format and the backend's exports.

Both arrive as one normalised frame with columns ``user_id``, ``item_id``
(strings), ``timestamp`` (int seconds, UTC), ``interaction_type`` and
``implicit_rating`` (float), plus the held-out test cases grouped by user.

Accepted field names (the first is canonical):

====================  ======================================
interactions          ``item_id`` / ``resource_id``; ``implicit_rating`` / ``strength``
held_out_test         ``{user_id, relevant_items, candidate_items}`` per user, or flat
                      rows ``{user_id, resource_id | item_id, is_relevant}``
resources (optional)  ``{resource_id | item_id, title, description}``: the text the
                      recommender reads an item from
====================  ======================================

Every error names the file, the record and the field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neo_ml.data.documents import read_json, records_and_metadata, unicode_problem
from neo_ml.data.ids import build_id_maps
from neo_ml.errors import DataFormatError, brief

log = logging.getLogger(__name__)

COLUMNS = ["user_id", "item_id", "timestamp", "interaction_type", "implicit_rating"]
ITEM_KEYS = ("item_id", "resource_id")
RATING_KEYS = ("implicit_rating", "strength", "interaction_strength")
TIME_KEYS = ("timestamp", "interaction_timestamp")
EARLIEST, LATEST = int(pd.Timestamp.min.timestamp()) + 1, int(pd.Timestamp.max.timestamp())  # what pandas holds
# The backend's column widths (``data.db``): a longer value could not be stored, so no format accepts one.
MAX_ID_LENGTH, MAX_TYPE_LENGTH = 64, 50
MAX_TITLE_LENGTH, MAX_DESCRIPTION_LENGTH = 1024, 100_000
RESOURCE_COLUMNS = ["item_id", "title", "description"]
MAX_TIME_LENGTH = 64  # the longest ISO-8601 time is about 35 characters; nothing longer is parsed at all


@dataclass
class HeldOutCase:
    """One user's evaluation case: rank ``candidate_items``, hoping ``relevant_items`` come first."""

    user_id: str
    relevant_items: list[str]
    candidate_items: list[str]


@dataclass
class InteractionDataset:
    interactions: pd.DataFrame
    held_out_test: list[HeldOutCase] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    source: str = "<memory>"
    resources: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RESOURCE_COLUMNS))


def checked_string(value: str, limit: int, source: str, record: int | str, name: str) -> str:
    """``value`` if it fits the database column and is valid Unicode; DataFormatError otherwise."""
    if len(value) > limit:
        raise DataFormatError(f"at most {limit} characters (the database column's width), got {brief(value)}",
                              source=source, record=record, field=name)
    problem = unicode_problem(value)
    if problem:
        raise DataFormatError(f"{problem}, got {brief(value)}", source=source, record=record, field=name)
    return value


def _id(value: Any, source: str, record: int | str, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise DataFormatError(f"expected a non-empty string or integer id, got {brief(value)}",
                              source=source, record=record, field=name)
    return checked_string(str(value), MAX_ID_LENGTH, source, record, name)


def _parse_time(text: str) -> int | None:
    """Epoch seconds of an ISO-8601 time (UTC when it names no offset), or None.

    Strict on purpose: ``fromisoformat`` reads the ISO forms (and what SQLite and PostgreSQL return) in
    linear time and refuses words such as "now", which pandas would turn into the time of the import.
    """
    if len(text) > MAX_TIME_LENGTH:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp())


def _timestamp(value: Any, source: str, record: int | str, field: str = "timestamp") -> int:
    seconds = None if isinstance(value, bool) else value
    if isinstance(value, dt.datetime):  # from a database; the backend writes UTC
        seconds = int((value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp())
    elif isinstance(value, str):
        seconds = _parse_time(value) if value.isascii() else None
    if isinstance(seconds, int | float) and math.isfinite(seconds) and EARLIEST <= seconds <= LATEST:
        return int(seconds)
    raise DataFormatError(f"expected epoch seconds or an ISO-8601 time between 1677 and 2262, got {brief(value)}",
                          source=source, record=record, field=field)


def _first_key(row: dict, keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in row), None)


def parse_interaction(row: Any, source: str, record: int | str) -> dict:
    """One interaction record, checked and normalised to the canonical fields."""
    if not isinstance(row, dict):
        raise DataFormatError(f"expected an object, got {type(row).__name__}", source=source, record=record)
    if "user_id" not in row:
        raise DataFormatError("missing", source=source, record=record, field="user_id")
    item_key = _first_key(row, ITEM_KEYS)
    if item_key is None:
        raise DataFormatError("missing (also looked for 'resource_id')", source=source, record=record,
                              field="item_id")
    rating_key = _first_key(row, RATING_KEYS)
    rating = row.get(rating_key, 1.0) if rating_key else 1.0
    if isinstance(rating, bool) or not isinstance(rating, int | float) or not math.isfinite(rating):
        raise DataFormatError(f"expected a number, got {brief(rating)}", source=source, record=record,
                              field=rating_key)
    time_key = _first_key(row, TIME_KEYS)
    kind = row.get("interaction_type", "view")
    if not isinstance(kind, str):
        raise DataFormatError(f"expected a string, got {brief(kind)}", source=source, record=record,
                              field="interaction_type")
    checked_string(kind, MAX_TYPE_LENGTH, source, record, "interaction_type")
    return {
        "user_id": _id(row["user_id"], source, record, "user_id"),
        "item_id": _id(row[item_key], source, record, item_key),
        "timestamp": _timestamp(row.get(time_key, 0), source, record, time_key or "timestamp"),
        "interaction_type": kind,
        "implicit_rating": float(rating),
    }


def interactions_checksum(frame: pd.DataFrame) -> str:
    """sha256 of a normalised interactions frame, independent of row order."""
    table = frame[COLUMNS].sort_values(["user_id", "item_id", "timestamp", "interaction_type"], kind="stable")
    return hashlib.sha256(table.to_csv(sep="\t", index=False, header=False).encode()).hexdigest()


def interactions_frame(records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    return frame.astype({"user_id": str, "item_id": str, "timestamp": np.int64,
                         "interaction_type": str, "implicit_rating": float})


def _held_out(rows: Any, source: str) -> list[HeldOutCase]:
    if not isinstance(rows, list):
        raise DataFormatError("expected a list", source=source, field="held_out_test")
    cases: dict[str, HeldOutCase] = {}
    for n, row in enumerate(rows):
        where = f"held_out_test[{n}]"
        if not isinstance(row, dict) or "user_id" not in row:
            raise DataFormatError("expected an object with 'user_id'", source=source, record=where)
        user = _id(row["user_id"], source, where, "user_id")
        if "candidate_items" in row:  # the seed's per-user form
            for name in ("relevant_items", "candidate_items"):
                value = row.get(name)
                if not isinstance(value, list):
                    raise DataFormatError("expected a list of ids", source=source, record=where, field=name)
            case = HeldOutCase(user, [_id(i, source, where, "relevant_items") for i in row["relevant_items"]],
                               [_id(i, source, where, "candidate_items") for i in row["candidate_items"]])
            cases[user] = case
            continue
        item_key = _first_key(row, ("resource_id", "item_id"))  # the backend's flat form
        if item_key is None or not isinstance(row.get("is_relevant"), bool):
            raise DataFormatError("expected 'candidate_items', or 'resource_id' with boolean 'is_relevant'",
                                  source=source, record=where)
        item = _id(row[item_key], source, where, item_key)
        case = cases.setdefault(user, HeldOutCase(user, [], []))
        if item not in case.candidate_items:
            case.candidate_items.append(item)
        if row["is_relevant"] and item not in case.relevant_items:
            case.relevant_items.append(item)
    return list(cases.values())


def _optional_text(row: dict, name: str, limit: int, source: str, where: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataFormatError(f"expected a string, got {brief(value)}", source=source, record=where, field=name)
    return checked_string(value, limit, source, where, name).strip()


def parse_resources(rows: Any, source: str) -> pd.DataFrame:
    """A ``resources`` section -> a frame of item_id, title, description (empty strings where absent).

    Each entry needs an id and some text; an id listed twice is refused, naming both records."""
    if not isinstance(rows, list):
        raise DataFormatError("expected a list", source=source, field="resources")
    records, first_seen = [], {}
    for n, row in enumerate(rows):
        where = f"resources[{n}]"
        if not isinstance(row, dict):
            raise DataFormatError(f"expected an object, got {type(row).__name__}", source=source, record=where)
        key = _first_key(row, ("resource_id", "item_id"))
        if key is None:
            raise DataFormatError("missing (also looked for 'item_id')", source=source, record=where,
                                  field="resource_id")
        item = _id(row[key], source, where, key)
        if item in first_seen:
            raise DataFormatError(f"{brief(item)} is listed twice (also resources[{first_seen[item]}])",
                                  source=source, record=where, field=key)
        first_seen[item] = n
        title = _optional_text(row, "title", MAX_TITLE_LENGTH, source, where)
        description = _optional_text(row, "description", MAX_DESCRIPTION_LENGTH, source, where)
        if not title and not description:
            raise DataFormatError("has neither a title nor a description", source=source, record=where)
        records.append({"item_id": item, "title": title, "description": description})
    return pd.DataFrame.from_records(records, columns=RESOURCE_COLUMNS).astype(str)


def resource_text(title: str | None, description: str | None) -> str:
    """What the recommender reads of a resource: "Title. Description" (either may be missing)."""
    title, description = (title or "").strip(), (description or "").strip()
    if title and description:
        return f"{title}{'' if title[-1] in '.!?' else '.'} {description}"
    return title or description


def resource_texts(resources: pd.DataFrame) -> dict[str, str]:
    """item_id -> ``resource_text`` of a resources frame (``parse_resources``, ``db.read_resources``)."""
    return {item: resource_text(title, description) for item, title, description in
            resources[RESOURCE_COLUMNS].itertuples(index=False)}


def parse_interaction_document(document: Any, source: str = "<memory>") -> InteractionDataset:
    """A decoded JSON document in either format -> InteractionDataset, or DataFormatError."""
    rows, metadata = records_and_metadata(document, "interactions", source)
    frame = interactions_frame([parse_interaction(row, source, n) for n, row in enumerate(rows)])
    held = _held_out(document["held_out_test"], source) if "held_out_test" in document else []
    dataset = InteractionDataset(frame, held, metadata, source)
    if "resources" in document:
        dataset.resources = parse_resources(document["resources"], source)
    return dataset


def read_interactions_json(path: str | Path) -> InteractionDataset:
    """Read and check an interactions JSON file (seed format or backend export)."""
    return parse_interaction_document(read_json(path), str(path))


def load_interaction_data(data_path: str | Path) -> tuple[list[dict], dict[str, int], dict[str, int]]:
    """The seed's loader: (normalised interaction records, user_id_map, item_id_map)."""
    dataset = read_interactions_json(data_path)
    users, items = build_id_maps(dataset.interactions)
    frame = dataset.interactions
    density = len(frame) / max(1, len(users) * len(items))
    log.info("%s: %d interactions, %d users, %d items, density %.4f",
             data_path, len(frame), len(users), len(items), density)
    return frame.to_dict("records"), users.to_dict(), items.to_dict()


def validate_data_format(data: Any, data_type: str) -> bool:
    """The seed's check: True if ``data`` has the shape the loaders return, else False (logged).

    ``data_type`` is 'recommendation' for (records, user_map, item_map) or
    'classification' for a list of (text, labels) pairs.
    """
    try:
        _check_shape(data, data_type)
    except DataFormatError as exc:
        log.error("invalid %s data: %s", data_type, exc)
        return False
    return True


def _check_shape(data: Any, data_type: str) -> None:
    if data_type == "recommendation":
        if not (isinstance(data, tuple) and len(data) == 3):
            raise DataFormatError("expected (interactions, user_id_map, item_id_map)")
        records, user_map, item_map = data
        if not (isinstance(records, list) and records):
            raise DataFormatError("interactions must be a non-empty list")
        if not (isinstance(user_map, dict) and user_map and isinstance(item_map, dict) and item_map):
            raise DataFormatError("id maps must be non-empty dicts")
        for n, row in enumerate(records):
            parse_interaction(row, "<data>", n)
            if str(row["user_id"]) not in user_map:
                raise DataFormatError("not in user_id_map", record=n, field="user_id")
            if str(row.get("item_id", row.get("resource_id"))) not in item_map:
                raise DataFormatError("not in item_id_map", record=n, field="item_id")
    elif data_type == "classification":
        if not (isinstance(data, list) and data):
            raise DataFormatError("expected a non-empty list of (text, labels)")
        for n, pair in enumerate(data):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise DataFormatError("expected (text, labels)", record=n)
            text, labels = pair
            if not (isinstance(text, str) and text.strip()):
                raise DataFormatError("expected non-empty text", record=n, field="text")
            if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
                raise DataFormatError("expected a non-empty list of label strings", record=n, field="labels")
    else:
        raise DataFormatError(f"unknown data_type {data_type!r}; use 'recommendation' or 'classification'")


def dataset_to_document(dataset: InteractionDataset) -> dict:
    """The seed's JSON format for an InteractionDataset (timestamps as ISO-8601 UTC)."""
    frame = dataset.interactions
    records = frame.assign(timestamp=pd.to_datetime(frame["timestamp"], unit="s", utc=True)
                           .dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_dict("records")
    return {
        "metadata": {**dataset.metadata, "num_users": int(frame["user_id"].nunique()),
                     "num_items": int(frame["item_id"].nunique()), "num_interactions": len(frame)},
        "interactions": records,
        "held_out_test": [vars(case) for case in dataset.held_out_test],
        **({"resources": [{"resource_id": item, "title": title, "description": description}
                          for item, title, description in dataset.resources[RESOURCE_COLUMNS].itertuples(index=False)]}
           if len(dataset.resources) else {}),
    }
