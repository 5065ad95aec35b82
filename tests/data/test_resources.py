"""The ``resources`` section of an interactions file, and the text the recommender reads of a resource."""

import json

import pytest

from neo_ml.data.corpora import movielens_item_texts, movielens_resources
from neo_ml.data.interactions import (
    InteractionDataset,
    dataset_to_document,
    read_interactions_json,
    resource_text,
    resource_texts,
)
from neo_ml.errors import DataFormatError

INTERACTIONS = [{"user_id": "u1", "item_id": "r1", "timestamp": 100}]


def _file(tmp_path, resources):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"interactions": INTERACTIONS, "resources": resources}))
    return path


def test_a_resources_section_gives_each_resource_its_text_and_survives_a_round_trip(tmp_path):
    dataset = read_interactions_json(_file(tmp_path, [
        {"resource_id": "r1", "title": "Dune", "description": "A desert planet."},
        {"item_id": 7, "description": "No title."}, {"resource_id": "r9", "title": "Ends with a stop."}]))
    assert resource_texts(dataset.resources) == {"r1": "Dune. A desert planet.", "7": "No title.",
                                                 "r9": "Ends with a stop."}
    again = _file(tmp_path, dataset_to_document(InteractionDataset(dataset.interactions,
                                                                   resources=dataset.resources))["resources"])
    assert read_interactions_json(again).resources.equals(dataset.resources)


def test_a_file_without_resources_has_none():
    assert len(InteractionDataset(None).resources) == 0
    assert resource_text(None, "  ") == ""


@pytest.mark.parametrize("entry, record, field, message", [
    ("not an object", "resources[1]", None, "expected an object"),
    ({"title": "no id"}, "resources[1]", "resource_id", "missing"),
    ({"resource_id": "r2"}, "resources[1]", None, "neither a title nor a description"),
    ({"resource_id": "r2", "title": 5}, "resources[1]", "title", "expected a string"),
    ({"resource_id": "r2", "title": "x" * 1025}, "resources[1]", "title", "at most 1024"),
    ({"resource_id": "r1", "title": "again"}, "resources[1]", "resource_id", "listed twice (also resources[0])"),
])
def test_a_bad_resource_names_the_file_the_record_and_the_field(tmp_path, entry, record, field, message):
    path = _file(tmp_path, [{"resource_id": "r1", "title": "Dune"}, entry])
    with pytest.raises(DataFormatError) as caught:
        read_interactions_json(path)
    text = str(caught.value)
    assert str(path) in text and record in text and message in text and (field is None or field in text)


def test_movielens_movies_are_read_with_their_year_and_genres():
    texts = movielens_item_texts()
    assert len(texts) == 1682 and texts["1"] == "Toy Story (1995). Animation, Children's, Comedy."
    resources = movielens_resources()
    assert (resources["title"] != "").all() and resources["item_id"].is_unique
