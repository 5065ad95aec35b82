"""Serving resources the checkpoint was not trained on, from their text: added by hand or found in the database."""

import json
import threading

import numpy as np
import pandas as pd
import pytest

from neo_ml import NCFService
from neo_ml.data import db as database
from neo_ml.data.interactions import InteractionDataset, dataset_to_document, read_interactions_json
from neo_ml.errors import ColdStartError, InvalidRequestError
from neo_ml.ncf.checkpoint import load_ncf_checkpoint

TOPICS = ["astronomy", "cooking", "poetry", "chess", "sailing", "botany"]
NEW = [f"new-{n}" for n in range(4)]


def _text(n: int) -> tuple[str, str]:
    return f"Volume {n} on {TOPICS[n % len(TOPICS)]}", f"A book about {TOPICS[n % len(TOPICS)]}."


@pytest.fixture(scope="module")
def text_checkpoint(tmp_path_factory, synthetic_frame):
    """A SASRec trained by the command on a file with a ``resources`` section: it gains a text path."""
    from neo_ml.commands.train_ncf import main

    folder = tmp_path_factory.mktemp("text")
    items = sorted(synthetic_frame["item_id"].unique())
    resources = pd.DataFrame([(item, *_text(n)) for n, item in enumerate(items)],
                             columns=["item_id", "title", "description"])
    data = folder / "interactions.json"
    data.write_text(json.dumps(dataset_to_document(InteractionDataset(synthetic_frame, resources=resources))))
    path = folder / "sasrec.pt"
    assert main(["--data", str(data), "--output", str(path), "--no-progress", "--architecture", "sasrec",
                 "--embedding-dim", "16", "--history-length", "8", "--taste-length", "8", "--epochs", "2",
                 "--text-epochs", "1", "--seed", "0"]) == 0
    return path, data


def _user(path) -> str:
    return next(iter(load_ncf_checkpoint(path)["user_id_map"]))


def test_a_file_with_resources_trains_a_text_path_into_the_checkpoint(text_checkpoint):
    state = load_ncf_checkpoint(text_checkpoint[0])["model_state_dict"]
    assert state["text_projection.0.weight"].shape[1] == 384  # all-MiniLM-L6-v2's width
    assert state["item_text"].abs().sum(1)[:-1].min() > 0  # every item's text was embedded


def test_added_resources_are_scored_and_recommended_without_retraining(text_checkpoint):
    service = NCFService(model_path=text_checkpoint[0])
    user = _user(text_checkpoint[0])
    known = service.known_item_ids()
    with pytest.raises(ColdStartError, match="unknown item"):
        service.predict(user, [NEW[0]])
    assert service.add_resources({NEW[0]: "Volume 900 on chess. A book about chess.", NEW[1]: ""}) == 2
    assert service.add_resources({NEW[0]: "ignored: already added", known[0]: "ignored: trained"}) == 0
    assert service.known_item_ids() == known + NEW[:2]
    scores = service.predict_batch(user, [NEW[0], known[0], NEW[1], "never-heard-of"])
    assert set(scores) == {NEW[0], known[0], NEW[1]} and all(0 < s < 1 for s in scores.values())
    assert service.predict(user, [NEW[0]])[NEW[0]] == pytest.approx(scores[NEW[0]])
    everything = service.recommend(user, top_k=len(known) + 2, exclude_seen=False)
    assert {NEW[0], NEW[1]} <= {item for item, _ in everything}
    ranked = [score for _, score in everything]
    assert ranked == sorted(ranked, reverse=True)
    assert dict(everything)[NEW[0]] == pytest.approx(scores[NEW[0]])
    top = service.recommend(user, top_k=5)
    assert len(top) == 5 and [s for _, s in top] == sorted((s for _, s in top), reverse=True)


def test_a_checkpoint_without_a_text_path_refuses_new_resources(trained_checkpoint):
    with pytest.raises(InvalidRequestError, match="no text path"):
        NCFService(model_path=trained_checkpoint).add_resources({"x": "A title"})
    with pytest.raises(InvalidRequestError, match="text must be a string"):
        NCFService(model_path=trained_checkpoint).add_resources({"x": 3})


def test_resources_imported_after_training_are_served_from_the_database(text_checkpoint, tmp_path):
    path, data = text_checkpoint
    engine = database.connect(tmp_path / "neo.db")
    dataset = read_interactions_json(data)
    database.import_interactions(engine, dataset.interactions, resources_frame=dataset.resources)
    service = NCFService(db=engine, model_path=path, resource_refresh_seconds=0)
    user = _user(path)
    service.recommend(user)  # loaded, with the catalogue it was trained on
    catalogue = len(service.known_item_ids())
    database.import_resources(engine, pd.DataFrame([(NEW[2], *_text(3))], columns=["item_id", "title", "description"]))
    first_sight = service.predict_batch(user, [NEW[2]])  # looked up and embedded on first sight
    assert set(first_sight) == {NEW[2]}
    database.import_resources(engine, pd.DataFrame([(NEW[3], *_text(4))], columns=["item_id", "title", "description"]))
    everything = dict(service.recommend(user, top_k=catalogue + 2, exclude_seen=False))
    assert NEW[3] in everything and everything[NEW[2]] == pytest.approx(first_sight[NEW[2]])
    # a database resource is embedded from its title and description, as training read them
    alone = NCFService(model_path=path)
    alone.add_resources({NEW[2]: "Volume 3 on chess. A book about chess."})
    assert alone.predict_batch(user, [NEW[2]], history=[])[NEW[2]] == pytest.approx(
        service.predict_batch(user, [NEW[2]], history=[])[NEW[2]], rel=1e-5)


def test_resources_added_while_others_recommend_are_never_half_seen(text_checkpoint):
    service = NCFService(model_path=text_checkpoint[0])
    user, errors = _user(text_checkpoint[0]), []
    catalogue = len(service.known_item_ids())

    def recommend():
        try:
            for _ in range(30):
                ranked = service.recommend(user, top_k=catalogue + 40, exclude_seen=False)
                assert len({item for item, _ in ranked}) == len(ranked)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    readers = [threading.Thread(target=recommend) for _ in range(3)]
    for thread in readers:
        thread.start()
    for n in range(40):
        service.add_resources({f"added-{n}": f"Volume {n} on poetry."})
    for thread in readers:
        thread.join()
    assert not errors
    assert len(service.known_item_ids()) == catalogue + 40
    assert np.isfinite(list(service.predict_batch(user, [f"added-{n}" for n in range(40)]).values())).all()
