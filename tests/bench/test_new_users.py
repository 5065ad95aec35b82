"""The new-user protocol: users left out of training, served from the database without retraining."""

import numpy as np
import pytest

from neo_ml.bench.new_users import new_user_run, pick_new_users
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.evaluate import hit_rate_and_ndcg, sampled_ranks
from neo_ml.ncf.train import train_ncf_model

SMALL_SASREC = dict(architecture="sasrec", embedding_dim=16, history_length=10, epochs=3, batch_size=64, seed=0)


def test_a_split_without_some_users_keeps_everything_else_as_it_was(synthetic_split):
    left_out = pick_new_users(synthetic_split, 0.1, seed=3)
    assert len(left_out) == round(0.1 * (synthetic_split.test_items >= 0).sum())
    assert (pick_new_users(synthetic_split, 0.1, seed=3) == left_out).all()
    smaller = synthetic_split.without_users(left_out)
    gone = {synthetic_split.users.ids[u] for u in left_out}
    assert not gone & set(smaller.users.ids) and len(smaller.users) == synthetic_split.num_users - len(left_out)
    assert smaller.items == synthetic_split.items
    for user_id in smaller.users.ids[:20]:
        old, new = synthetic_split.users.index[user_id], smaller.users.index[user_id]
        assert (synthetic_split.train[synthetic_split.train[:, 0] == old, 1]
                == smaller.train[smaller.train[:, 0] == new, 1]).all()
        assert (synthetic_split.test_negatives[old] == smaller.test_negatives[new]).all()
        assert synthetic_split.test_items[old] == smaller.test_items[new]


@pytest.fixture(scope="module")
def warm_sasrec(synthetic_split):
    return train_ncf_model(synthetic_split, NCFConfig(**SMALL_SASREC), progress=False)


def test_new_users_are_served_from_the_database_and_warm_ones_as_the_protocol_scores_them(
        synthetic_split, synthetic_frame, warm_sasrec):
    result = new_user_run(synthetic_split, NCFConfig(**SMALL_SASREC), warm_sasrec, 0.1, synthetic_frame)
    users = pick_new_users(synthetic_split, 0.1, seed=0)
    assert result["users"] == len(users)
    for side in ("new", "warm"):
        assert set(result[side]) == {"hr@10", "ndcg@10", "hr@10_full", "ndcg@10_full"}
        assert all(0.0 <= value <= 1.0 for value in result[side].values())
    # Through the service, the warm model ranks each user's test item as the protocol's own scorer does.
    history = synthetic_split.history_for("test", warm_sasrec.model.history_length)[users]
    ranks = sampled_ranks(warm_sasrec.model, users, synthetic_split.test_items[users],
                          synthetic_split.test_negatives[users], history)
    hr, ndcg = hit_rate_and_ndcg(ranks)
    assert result["warm"]["hr@10"] == pytest.approx(hr) and result["warm"]["ndcg@10"] == pytest.approx(ndcg)
    assert result["new"] != result["warm"]  # a model that never saw them, not the same one
    assert np.isfinite(result["train_seconds"])


def test_the_ncf_suite_reports_the_new_users_beside_the_loo_table(synthetic_split, synthetic_frame):
    from neo_ml.bench.ncf import benchmark_loo, format_report
    from neo_ml.bench.new_users import benchmark_new_users

    variants = {"tiny SASRec": {k: v for k, v in SMALL_SASREC.items() if k != "seed"}}
    loo, models = benchmark_loo(synthetic_split, (0, 1), variants)
    assert set(loo) == {"Popularity", "tiny SASRec"} and set(models["tiny SASRec"]) == {0, 1}
    assert 0 < loo["tiny SASRec"]["seconds_to_best"] <= loo["tiny SASRec"]["train_seconds"]
    configs = {seed: NCFConfig(**{**SMALL_SASREC, "seed": seed}) for seed in (0, 1)}
    new_users = benchmark_new_users(synthetic_split, configs, models["tiny SASRec"], 0.1, synthetic_frame)
    assert len(new_users["runs"]) == 2 and new_users["new"]["hr@10_sd"] >= 0.0
    text = format_report({"seeds": [0, 1], "loo": loo, "new_users": {"model": "tiny SASRec", **new_users}})
    assert "| tiny SASRec |" in text and "New users, tiny SASRec: 10% of users" in text
    assert "| new to the checkpoint |" in text and "| trained warm |" in text
