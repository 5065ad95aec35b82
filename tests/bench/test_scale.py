"""Scale pieces: the vectorised synthetic generator, the coded split, and bounded training batches."""

import numpy as np
import torch

from neo_ml.data.splits import coded_leave_one_out_split, leave_one_out_split
from neo_ml.data.synthetic import create_scale_interactions
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.model import build_model
from neo_ml.ncf.train import train_ncf_model


def test_scale_generator_gives_distinct_pairs_near_the_target_with_taste():
    coded = create_scale_interactions(2000, 3000, 100_000, num_clusters=20, min_per_user=20, seed=1)
    assert 0.97 * 100_000 <= len(coded) <= 100_000
    assert not coded.duplicated(["user", "item"]).any()
    assert coded["user"].nunique() == 2000 and coded.groupby("user").size().min() >= 20
    assert coded["item"].between(0, 2999).all()
    again = create_scale_interactions(2000, 3000, 100_000, num_clusters=20, min_per_user=20, seed=1)
    assert coded.equals(again)
    # Popularity is skewed: the top 1 % of items hold far more than 1 % of the interactions.
    counts = np.sort(coded["item"].value_counts().to_numpy())[::-1]
    assert counts[:30].sum() > 0.05 * len(coded)


def test_coded_split_equals_the_split_of_the_same_ids_as_strings():
    coded = create_scale_interactions(300, 400, 8000, seed=2)
    named = coded.assign(user_id=coded["user"].astype(str), item_id=coded["item"].astype(str))
    a, b = coded_leave_one_out_split(coded, seed=3), leave_one_out_split(named, seed=3)
    assert a.users.ids == b.users.ids and a.items.ids == b.items.ids
    for name in ("train", "validation_items", "test_items", "validation_negatives", "test_negatives"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_sparse_embeddings_train_and_move_only_the_rows_a_batch_touches():
    split = coded_leave_one_out_split(create_scale_interactions(500, 20_000, 10_000, seed=4))
    config = NCFConfig(architecture="neumf", epochs=1, sparse=True, embedding_dim=8, hidden_layers=[16, 8], seed=0)
    torch.manual_seed(config.seed)  # the training run starts from these same weights
    before = build_model("neumf", split.num_users, split.num_items, embedding_dim=8, hidden_layers=[16, 8],
                         history_length=config.history_length).gmf_item.weight.detach().clone()
    result = train_ncf_model(split, config, progress=False, max_batches=3)
    moved = (before != result.model.gmf_item.weight.detach()).any(dim=1).sum().item()
    assert 0 < moved <= 3 * config.batch_size < split.num_items / 5
    assert result.history[0]["train_pairs"] <= 3 * config.batch_size


def test_serve_catalogue_reports_every_retrieval_mode(trained_checkpoint):
    from neo_ml.bench.scale import serve_catalogue
    from neo_ml.ncf.service import NCFService

    users = NCFService(model_path=trained_checkpoint).known_user_ids()[:20]
    figures = serve_catalogue(trained_checkpoint, users)
    assert set(figures) == {"exact", "matmul", "ivf"}
    assert figures["exact"]["recall@10_of_exact"] == 1.0 and figures["exact"]["index_seconds"] == 0.0
    assert figures["ivf"]["index_seconds"] > 0 and 0 < figures["ivf"]["recall@10_of_exact"] <= 1


def test_the_scale_run_of_a_sequence_model_reports_predictions_and_its_softmax():
    from neo_ml.bench.scale import format_report, train_at_scale

    rows = [train_at_scale("100k", max_batches=2, sparse=sparse, architecture="sasrec") for sparse in (False, True)]
    assert [row["softmax_negatives"] for row in rows] == [None, 512]
    assert all(row["examples_per_positive"] == 1 and 0 < row["train_pairs"] <= 2 * 128 * 50 for row in rows)
    table = format_report({"runs": rows, "torch_threads": 2, "config": NCFConfig().to_dict()})
    assert "sasrec, 128 windows of 200 items per batch, every position of the latest 50" in table
    assert "| sparse, 512 sampled |" in table
    assert "| dense, full softmax |" in table


def test_a_catalogue_model_is_reused_only_for_the_same_config(tmp_path):
    from neo_ml.bench.scale import catalogue_model_stem
    from neo_ml.ncf.config import NCFConfig

    default = catalogue_model_stem(tmp_path, NCFConfig(), 1000)
    assert default == catalogue_model_stem(tmp_path, NCFConfig(), 1000)
    assert default != catalogue_model_stem(tmp_path, NCFConfig(taste_length=0), 1000)
    assert default != catalogue_model_stem(tmp_path, NCFConfig(), 2000)
