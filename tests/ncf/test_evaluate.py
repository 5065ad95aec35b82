import numpy as np
import pytest
import torch

from neo_ml.ncf.evaluate import (
    hit_rate_and_ndcg,
    ndcg_at_k,
    ranks_against_candidates,
    sampled_ranks,
    top_k_metrics,
)


def test_ranks_count_ties_against_the_model():
    target = np.array([0.5, 0.5, 0.9])
    candidates = np.array([[0.1, 0.2, 0.3], [0.5, 0.1, 0.5], [1.0, 0.95, 0.9]])
    assert ranks_against_candidates(target, candidates).tolist() == [0, 2, 3]


def test_hit_rate_and_ndcg_by_hand():
    ranks = np.array([0, 1, 9, 10, 50])
    hr, ndcg = hit_rate_and_ndcg(ranks, k=10)
    assert hr == pytest.approx(3 / 5)
    assert ndcg == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(11)) / 5)


def test_constant_scores_never_hit():
    """A model that scores everything alike ranks the target last, not first."""

    class Constant(torch.nn.Module):  # the scorers' face: user vectors, then scores against them
        history_length = 0

        def user_vectors(self, users, history=None):
            return (torch.zeros(len(users), 0),)

        def score(self, vectors, items):
            return torch.zeros(len(items))

    ranks = sampled_ranks(Constant(), np.arange(3), np.array([1, 2, 3]), np.tile(np.arange(4, 103), (3, 1)))
    assert (ranks == 99).all()
    assert hit_rate_and_ndcg(ranks)[0] == 0.0


def test_ndcg_with_several_relevant_items():
    assert ndcg_at_k(["a", "b", "c"], {"a", "b"}, k=3) == pytest.approx(1.0)
    expected = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert ndcg_at_k(["x", "a", "y"], {"a", "b"}, k=3) == pytest.approx(expected)


def test_top_k_metrics_as_recommenders_defines_them():
    recommended = [["a", "x", "b", "y"], ["z", "w", "v", "u"]]
    relevant = [{"a", "b", "c"}, {"q"}]
    m = top_k_metrics(recommended, relevant, k=4)
    assert m["precision@4"] == pytest.approx((2 / 4 + 0) / 2)
    assert m["recall@4"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["map@4"] == pytest.approx(((1 / 1 + 2 / 3) / 3 + 0) / 2)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert m["ndcg@4"] == pytest.approx(((1 + 1 / np.log2(4)) / idcg + 0) / 2)
