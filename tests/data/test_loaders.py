import json

import pandas as pd
import pytest

from neo_ml.data import db as database
from neo_ml.data.interactions import (
    load_interaction_data,
    parse_interaction_document,
    read_interactions_json,
    validate_data_format,
)
from neo_ml.errors import DataFormatError

SEED_FORMAT = {
    "metadata": {"num_users": 2, "num_items": 3, "num_interactions": 3, "density": 0.5},
    "interactions": [
        {"user_id": "user_1", "item_id": "item_1", "timestamp": "2024-01-15T10:30:00",
         "interaction_type": "view", "implicit_rating": 1.0},
        {"user_id": "user_1", "item_id": "item_2", "timestamp": "2024-01-16T10:30:00",
         "interaction_type": "bookmark", "implicit_rating": 0.8},
        {"user_id": "user_2", "item_id": "item_3", "timestamp": 1705314600,
         "interaction_type": "share", "implicit_rating": 0.5},
    ],
    "held_out_test": [{"user_id": "user_1", "relevant_items": ["item_3"],
                       "candidate_items": ["item_3", "item_1"]}],
}


def _write(tmp_path, document, name="data.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def test_seed_format(tmp_path):
    data = read_interactions_json(_write(tmp_path, SEED_FORMAT))
    frame = data.interactions
    assert list(frame["item_id"]) == ["item_1", "item_2", "item_3"]
    assert frame["timestamp"].tolist()[0] == int(pd.Timestamp("2024-01-15T10:30:00Z").timestamp())
    assert frame["implicit_rating"].tolist() == [1.0, 0.8, 0.5]
    assert data.held_out_test[0].relevant_items == ["item_3"]


def test_backend_export_format(tmp_path, backend_document):
    data = read_interactions_json(_write(tmp_path, backend_document))
    assert list(data.interactions["item_id"]) == ["resource_013", "resource_014"]
    assert data.interactions["implicit_rating"].tolist() == [0.82, 0.3]
    (case,) = data.held_out_test  # flat rows grouped by user, duplicates merged
    assert case.user_id == "user_035"
    assert case.candidate_items == ["resource_014", "resource_099"]
    assert case.relevant_items == ["resource_014"]


def test_seed_loader_returns_records_and_maps(tmp_path):
    records, users, items = load_interaction_data(_write(tmp_path, SEED_FORMAT))
    assert len(records) == 3 and users == {"user_1": 0, "user_2": 1}
    assert items == {"item_1": 0, "item_2": 1, "item_3": 2}
    assert validate_data_format((records, users, items), "recommendation")
    assert not validate_data_format((records, {}, items), "recommendation")
    assert validate_data_format([("text", ["000"])], "classification")
    assert not validate_data_format([("", ["000"])], "classification")


@pytest.mark.parametrize(("mutate", "record", "field"), [
    (lambda d: d["interactions"][1].pop("user_id"), "record 1", "user_id"),
    (lambda d: d["interactions"][2].pop("item_id"), "record 2", "item_id"),
    (lambda d: d["interactions"][0].update(implicit_rating="high"), "record 0", "implicit_rating"),
    (lambda d: d["interactions"][1].update(timestamp="yesterday"), "record 1", "timestamp"),
    (lambda d: d["interactions"][0].update(user_id=None), "record 0", "user_id"),
    (lambda d: d["held_out_test"][0].update(candidate_items="item_1"), "held_out_test[0]", "candidate_items"),
])
def test_bad_records_name_file_record_and_field(tmp_path, mutate, record, field):
    document = json.loads(json.dumps(SEED_FORMAT))
    mutate(document)
    path = _write(tmp_path, document)
    with pytest.raises(DataFormatError) as error:
        read_interactions_json(path)
    message = str(error.value)
    assert str(path) in message and record in message and f"'{field}'" in message


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"interactions": []}', "is empty"),
    ('{"metadata": {}}', "'interactions': missing"),
])
def test_bad_documents(tmp_path, content, expected):
    path = _write(tmp_path, content)
    with pytest.raises(DataFormatError, match=expected):
        read_interactions_json(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataFormatError, match="nope.json: file not found"):
        read_interactions_json(tmp_path / "nope.json")


def test_database_round_trip(tmp_path, synthetic_frame):
    engine = database.connect(tmp_path / "neo.db")
    assert database.import_interactions(engine, synthetic_frame) == len(synthetic_frame)
    back = database.read_interactions(engine)
    key = ["user_id", "item_id", "timestamp"]
    pd.testing.assert_frame_equal(back.sort_values(key).reset_index(drop=True)[key],
                                  synthetic_frame.sort_values(key).reset_index(drop=True)[key])
    store = database.InteractionStore(engine)
    user = synthetic_frame["user_id"].iloc[0]
    expected = synthetic_frame[synthetic_frame["user_id"] == user].sort_values("timestamp")["item_id"]
    assert store.items_of(user) == expected.tolist()
    top_item, top_count = store.popular(1)[0]
    users_per_item = synthetic_frame.drop_duplicates(["user_id", "item_id"])["item_id"].value_counts()
    assert top_count == users_per_item.max() and users_per_item[top_item] == top_count


def test_failed_import_writes_nothing(tmp_path, synthetic_frame):
    engine = database.connect(tmp_path / "neo.db")
    database.import_interactions(engine, synthetic_frame.head(10))
    broken = synthetic_frame.head(5).assign(timestamp=None)
    with pytest.raises(Exception):  # noqa: B017 - any failure must roll back
        database.import_interactions(engine, broken, replace=True)
    assert len(database.read_interactions(engine)) == 10


def test_database_url_detection():
    assert database.is_database_url("sqlite:///x.db")
    assert database.is_database_url("postgresql+psycopg://u:p@localhost/db")
    assert not database.is_database_url("data/interactions.json")


def test_empty_document_interactions_error_is_data_format_error():
    with pytest.raises(DataFormatError, match="expected a list"):
        parse_interaction_document({"interactions": {"a": 1}}, "doc")
