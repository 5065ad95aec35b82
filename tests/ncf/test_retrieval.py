"""Two-stage recommendation: retrieved candidates, then the full model; and recommend_batch."""

import numpy as np
import pytest
import torch

from neo_ml import InvalidRequestError, NCFService
from neo_ml.ncf.checkpoint import save_ncf_checkpoint
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.model import build_model
from neo_ml.ncf.retrieval import IVFIndex, MatmulIndex, hide_repeats
from neo_ml.ncf.train import train_ncf_model


def _items(ranked):
    return [item for item, _ in ranked]


def _same_ranking(a, b):
    return _items(a) == _items(b) and [s for _, s in a] == pytest.approx([s for _, s in b], rel=1e-5)


def _untrained_checkpoint(path, split, architecture):
    config = NCFConfig(architecture=architecture, embedding_dim=8, hidden_layers=[8], history_length=0)
    model = build_model(architecture, split.num_users, split.num_items, embedding_dim=8, hidden_layers=[8])
    torch.manual_seed(0)
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter)
    save_ncf_checkpoint(path, model, config.to_dict(), split.users, split.items, split.train, {}, [], "x", "test")
    return path


@pytest.fixture(scope="module")
def exact(trained_checkpoint):
    return NCFService(model_path=trained_checkpoint, retrieval="exact")


def test_matmul_index_finds_the_largest_inner_products_and_ivf_nearly_all_of_them():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 16))  # learned item vectors gather by taste, with unequal norms
    items = (centres[rng.integers(0, 30, 5000)] + 0.3 * rng.normal(size=(5000, 16))) * rng.lognormal(0, 0.5, (5000, 1))
    queries = centres[rng.integers(0, 30, 20)] + 0.3 * rng.normal(size=(20, 16))
    truth = np.argsort(-(queries @ items.T), axis=1)[:, :50]
    assert (MatmulIndex(items).search(queries, 50) == truth).all()
    found = IVFIndex(items, nprobe=16).search(queries, 50)  # 16 of 282 cells
    recall = np.mean([len(set(f) & set(t)) / 50 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95, recall  # an inner-product IVF over the same vectors finds 0.91


def test_two_stage_with_every_item_as_candidate_equals_exact_scoring(trained_checkpoint, exact):
    service = NCFService(model_path=trained_checkpoint, retrieval="matmul", candidates=10_000)
    for user in ("user_001", "user_007", "user_020"):
        assert _same_ranking(service.recommend(user, 10), exact.recommend(user, 10))


def test_two_stage_recall_of_the_exact_top_10_and_seen_items_stay_out(trained_checkpoint, exact):
    service = NCFService(model_path=trained_checkpoint, retrieval="matmul", candidates=20)
    users = [f"user_{u:03d}" for u in range(1, 51)]
    recall = np.mean([len(set(_items(service.recommend(u, 10))) & set(_items(exact.recommend(u, 10)))) / 10
                      for u in users])
    assert recall >= 0.95, recall  # 20 candidates (plus as many as the user has seen) of 300 items
    for user in users[:10]:
        seen = set(service.item_ids[service._user_items(user)[0]])
        assert not seen & set(_items(service.recommend(user, 10)))
        assert seen & set(_items(service.recommend(user, 200, exclude_seen=False)))


def test_gmf_retrieval_is_exact_because_its_score_is_the_inner_product(tmp_path, synthetic_split):
    path = _untrained_checkpoint(tmp_path / "gmf.pt", synthetic_split, "gmf")
    two_stage = NCFService(model_path=path, retrieval="matmul", candidates=10)
    exact = NCFService(model_path=path, retrieval="exact")
    for user in synthetic_split.users.ids[:20]:
        assert _items(two_stage.recommend(user, 10)) == _items(exact.recommend(user, 10))


def test_sasrec_two_stage_is_exact_though_the_items_read_score_below_their_inner_product(tmp_path,
                                                                                         synthetic_split):
    config = NCFConfig(architecture="sasrec", embedding_dim=8, history_length=6)
    model = build_model("sasrec", synthetic_split.num_users, synthetic_split.num_items,
                        **{k: v for k, v in config.to_dict().items() if k != "architecture"})
    with torch.no_grad():
        torch.nn.init.normal_(model.taste.weight[:-1])  # the long-term taste moves the query too
        model.repeat.fill_(3.0)  # a penalty of e^3 pushes read items out of the inner product's top 10
    path = tmp_path / "sasrec.pt"
    save_ncf_checkpoint(path, model, config.to_dict(), synthetic_split.users, synthetic_split.items,
                        synthetic_split.train, {}, [], "x", "test")
    two_stage = NCFService(model_path=path, retrieval="matmul", candidates=10)
    exact = NCFService(model_path=path, retrieval="exact")
    for user in synthetic_split.users.ids[:20]:
        assert _items(two_stage.recommend(user, 10, exclude_seen=False)) == \
            _items(exact.recommend(user, 10, exclude_seen=False))


def test_recommend_batch_equals_one_recommend_per_user(trained_checkpoint):
    for retrieval in ("exact", "ivf"):
        service = NCFService(model_path=trained_checkpoint, retrieval=retrieval, candidates=40, nprobe=4)
        users = ["user_003", "nobody", "user_010", "user_003", 12, "user_044"]
        batch = service.recommend_batch(users, top_k=7, chunk=2)
        assert [_items(row) for row in batch] == [_items(service.recommend(u, 7)) for u in users]
        assert _same_ranking(batch[0], service.recommend("user_003", 7))


def test_bad_retrieval_options_are_refused(trained_checkpoint):
    with pytest.raises(InvalidRequestError, match="retrieval must be one of"):
        NCFService(model_path=trained_checkpoint, retrieval="hnsw")
    with pytest.raises(InvalidRequestError, match="candidates must be a positive integer"):
        NCFService(model_path=trained_checkpoint, candidates=0)
    with pytest.raises(InvalidRequestError, match="must be a list of ids"):
        NCFService(model_path=trained_checkpoint).recommend_batch("user_001")


@pytest.mark.parametrize("architecture", ["mlp", "neumf"])
def test_the_first_order_estimate_finds_the_exact_top_10_of_a_trained_model(tmp_path, synthetic_split,
                                                                              architecture):
    config = NCFConfig(architecture=architecture, embedding_dim=16, hidden_layers=[32, 16], epochs=4,
                       history_length=3, seed=1)
    model = train_ncf_model(synthetic_split, config, progress=False).model
    path = save_ncf_checkpoint(tmp_path / "m.pt", model, config.to_dict(), synthetic_split.users,
                               synthetic_split.items, synthetic_split.train, {}, [], "x", "test")
    two_stage = NCFService(model_path=path, retrieval="matmul", candidates=30)
    exact = NCFService(model_path=path, retrieval="exact")
    users = list(synthetic_split.users.ids[:60])
    recall = np.mean([len(set(_items(a)) & set(_items(b))) / 10 for a, b in
                      zip(two_stage.recommend_batch(users, exclude_seen=False),
                          exact.recommend_batch(users, exclude_seen=False), strict=True)])
    assert recall >= 0.9, recall  # 30 of 300 items; chance would give 0.1


def test_the_mlp_side_is_linearised_at_the_items_users_take(trained_checkpoint):
    service = NCFService(model_path=trained_checkpoint, retrieval="matmul")
    service.recommend("user_001")
    model, counts = service.model, service._popularity
    projection = model._projection(model.mlp_item.weight)
    expected = torch.as_tensor(counts / counts.sum(), dtype=torch.float32) @ projection
    assert torch.allclose(model._mean_projection, expected, atol=1e-6)
    assert not torch.allclose(model._mean_projection, projection.mean(0), atol=1e-3)
    model.set_item_prior(np.zeros(len(counts)))  # no counts: the plain mean
    model._projection(model.mlp_item.weight)
    assert torch.allclose(model._mean_projection, projection.mean(0), atol=1e-6)


def test_a_candidate_found_by_both_searches_is_scored_once():
    candidates = torch.tensor([[4, 7, -1, 7, 2, 4], [1, 2, 3, 3, 2, 1]])
    logits = torch.arange(12, dtype=torch.float32).view(2, 6)
    hide_repeats(candidates, logits)
    assert logits[0].tolist() == [0, 1, 2, -torch.inf, 4, -torch.inf]  # the first appearance stays
    assert logits[1].tolist() == [6, 7, 8, -torch.inf, -torch.inf, -torch.inf]
