import numpy as np
import pytest
import torch

from neo_ml import ColdStartError, InvalidRequestError, NCFModelNotFoundError, NCFService
from neo_ml.data import db as database
from neo_ml.ncf.checkpoint import REQUIRED_KEYS


@pytest.fixture(scope="module")
def service(trained_checkpoint):
    return NCFService(model_path=trained_checkpoint)


def test_checkpoint_loads_with_weights_only(trained_checkpoint):
    checkpoint = torch.load(trained_checkpoint, weights_only=True)
    assert set(REQUIRED_KEYS) <= set(checkpoint)
    for key in ("data_checksum", "package_versions", "config", "training_history"):
        assert checkpoint[key]
    assert checkpoint["config"]["seed"] == 0


def test_model_is_loaded_lazily_and_cached(trained_checkpoint):
    service = NCFService(model_path=trained_checkpoint)
    assert service.model is None
    service.recommend("user_001", 3)
    model = service.model
    service.recommend("user_002", 3)
    assert service.model is model


def test_predict_returns_probabilities_for_each_item(service):
    scores = service.predict("user_001", ["item_001", "item_002", "item_003"])
    assert set(scores) == {"item_001", "item_002", "item_003"}
    assert all(0 < s < 1 for s in scores.values())


def test_predict_batch_agrees_with_predict_and_skips_unknown_items(service):
    items = ["item_010", "item_020", "item_030"]
    batch = service.predict_batch("user_005", [*items, "no_such_item"])
    assert set(batch) == set(items)
    single = service.predict("user_005", items)
    assert batch == pytest.approx(single)


def test_recommend_excludes_seen_items(service, db_service, synthetic_frame):
    user = "user_003"
    seen = set(synthetic_frame.loc[synthetic_frame["user_id"] == user, "item_id"])
    for svc in (service, db_service):
        recs = svc.recommend(user, top_k=20)
        assert len(recs) == 20
        assert not {item for item, _ in recs} & seen
        scores = [s for _, s in recs]
        assert scores == sorted(scores, reverse=True)
    with_seen = {item for item, _ in service.recommend(user, top_k=300, exclude_seen=False)}
    assert seen <= with_seen


def test_recommend_ranks_like_predict_batch(service):
    recs = service.recommend("user_007", top_k=5, exclude_seen=False)
    scores = service.predict_batch("user_007", [item for item, _ in recs])
    assert [s for _, s in recs] == pytest.approx([scores[item] for item, _ in recs])


def test_recommend_reads_new_interactions_from_the_database(db_service):
    before = db_service.recommend("user_004", top_k=1)[0][0]
    import pandas as pd

    new = pd.DataFrame([{"user_id": "user_004", "item_id": before, "timestamp": 2_000_000_000,
                         "interaction_type": "view", "implicit_rating": 1.0}])
    database.import_interactions(db_service.store.engine, new)
    after = [item for item, _ in db_service.recommend("user_004", top_k=5)]
    assert before not in after


def _by_popularity(frame):
    """Item ids, most distinct users first, ties by id."""
    counts = frame.drop_duplicates(["user_id", "item_id"])["item_id"].value_counts()
    return sorted(counts.index, key=lambda item: (-counts[item], item))


def test_cold_start_returns_popular_items(service, db_service, synthetic_frame):
    popular = _by_popularity(synthetic_frame)
    for svc in (service, db_service):
        recs = svc.recommend("brand_new_user", top_k=3)
        assert [item for item, _ in recs] == popular[:3]
        assert recs[0][1] == 1.0 and all(0 < s <= 1 for _, s in recs)


def test_cold_start_threshold_sends_light_users_to_popularity(trained_checkpoint, synthetic_frame):
    counts = synthetic_frame["user_id"].value_counts()
    light = counts.index[-1]
    svc = NCFService(model_path=trained_checkpoint, cold_start_threshold=int(counts.iloc[-1]) + 1)
    recs = [item for item, _ in svc.recommend(light, top_k=3)]
    popular = _by_popularity(synthetic_frame)
    seen = set(synthetic_frame.loc[synthetic_frame["user_id"] == light, "item_id"])
    assert recs == [i for i in popular if i not in seen][:3]


def test_unknown_ids_raise_cold_start_error(service):
    with pytest.raises(ColdStartError, match="unknown user 'ghost'"):
        service.predict("ghost", ["item_001"])
    with pytest.raises(ColdStartError, match="unknown user"):
        service.predict_batch("ghost", ["item_001"])
    with pytest.raises(ColdStartError, match="unknown item"):
        service.predict("user_001", ["item_001", "nope"])
    with pytest.raises(ColdStartError, match="none of the 1 item"):
        service.predict_batch("user_001", ["nope"])


@pytest.mark.parametrize("top_k", [0, -3, 2.5, True])
def test_bad_top_k_is_refused(service, top_k):
    with pytest.raises(InvalidRequestError, match="top_k"):
        service.recommend("user_001", top_k=top_k)


def test_missing_model_names_the_training_command(tmp_path):
    service = NCFService(model_path=tmp_path / "absent.pt")
    with pytest.raises(NCFModelNotFoundError, match="python -m neo_ml.train_ncf"):
        service.recommend("user_001")


def test_top_k_larger_than_catalogue(service, synthetic_frame):
    recs = service.recommend("user_001", top_k=10_000)
    seen = synthetic_frame.loc[synthetic_frame["user_id"] == "user_001", "item_id"].nunique()
    assert len(recs) == synthetic_frame["item_id"].nunique() - seen
    assert len({item for item, _ in recs}) == len(recs)
    assert np.isfinite([s for _, s in recs]).all()


def test_one_user_calls_run_on_one_thread_and_give_the_callers_threads_back(trained_checkpoint):
    service = NCFService(model_path=trained_checkpoint)
    user, items = service.known_user_ids()[0], service.known_item_ids()[:5]
    seen_threads = []
    score = service.model.score
    service.model.score = lambda *args: seen_threads.append(torch.get_num_threads()) or score(*args)
    torch.set_num_threads(2)
    service.predict_batch(user, items)
    service.predict(user, items[:1])
    assert seen_threads == [1, 1] and torch.get_num_threads() == 2
    service.model.score = score
    score_all = service.model.score_all_items  # recommend scores every item of this small catalogue
    service.model.score_all_items = lambda *args: seen_threads.append(torch.get_num_threads()) or score_all(*args)
    seen_threads.clear()
    service.recommend(user, 3)
    service.recommend_batch([user, service.known_user_ids()[1]], 3)  # a batch keeps every thread
    assert seen_threads == [1, 2] and torch.get_num_threads() == 2
