"""The recommender's text path: an item without an id vector is read from its sentence embedding."""

import numpy as np
import pytest
import torch

from neo_ml.errors import InvalidRequestError
from neo_ml.ncf.checkpoint import load_ncf_checkpoint, model_from_checkpoint, save_trained
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.model import SASRec
from neo_ml.ncf.train import train_ncf_model

ITEMS, WIDTH = 30, 8


def _model(**kwargs) -> SASRec:
    torch.manual_seed(0)
    model = SASRec(5, ITEMS, embedding_dim=16, history_length=6, dropout=0.0, text_dim=WIDTH, **kwargs)
    model.set_item_text(torch.randn(ITEMS, WIDTH), torch.arange(ITEMS) >= 10)  # items 0-9: no id vector
    return model


def test_an_item_without_an_id_vector_is_its_text_alone_one_with_keeps_it_and_the_pad_is_zero():
    model = _model().eval()
    torch.nn.init.normal_(model.item_embedding.weight)
    table = model._table()
    assert torch.allclose(table[:10], model.text_projection(model.item_text[:10]))
    assert torch.equal(table[10:ITEMS], model.item_embedding.weight[10:ITEMS])
    assert not table[ITEMS].any()


def test_the_evaluation_table_follows_the_weights_after_training_and_new_texts():
    model = _model().eval()
    before = model._table().clone()
    assert model._table() is model._table()  # computed once per set of weights
    with torch.no_grad():
        model.text_projection[-1].bias.add_(1.0)
    model.train().eval()
    assert not torch.allclose(model._table()[:10], before[:10])
    model.set_item_text(torch.zeros(ITEMS, WIDTH), torch.arange(ITEMS) >= 20)
    nothing = model.text_projection(torch.zeros(WIDTH))
    assert torch.allclose(model._table()[:20], nothing.expand(20, -1))


def test_an_item_without_an_id_adds_nothing_to_the_taste():
    model = _model(taste_length=6).eval()
    torch.nn.init.normal_(model.taste.weight)
    with_new = torch.tensor([[ITEMS, 3, 12, 14]])  # item 3 has no id vector
    without = torch.tensor([[ITEMS, ITEMS, 12, 14]])
    assert torch.allclose(model._taste_items(with_new), without)


def test_a_model_without_a_text_path_refuses_texts():
    with pytest.raises(ValueError, match="no text path"):
        SASRec(5, ITEMS, text_dim=0).set_item_text(torch.zeros(ITEMS, WIDTH), torch.ones(ITEMS, dtype=torch.bool))


def test_id_dropout_is_checked():
    with pytest.raises(InvalidRequestError, match="id_dropout"):
        NCFConfig(id_dropout=1.0)


def test_the_text_path_is_fitted_after_training_leaves_the_warm_model_alone_and_is_saved(synthetic_split, tmp_path):
    never = np.arange(10)
    split = synthetic_split.without_item_interactions(never)
    assert not np.isin(split.train[:, 1], never).any() and len(split.train) < len(synthetic_split.train)
    assert np.array_equal(split.test_items, synthetic_split.test_items)
    text = np.random.default_rng(0).normal(size=(split.num_items, WIDTH)).astype(np.float32)
    config = NCFConfig(epochs=2, embedding_dim=16, history_length=4, taste_length=4, seed=3)
    result = train_ncf_model(split, config, progress=False, item_text=text)
    assert result.model.text_projection is not None and result.text_seconds > 0
    assert not result.model.has_id[never].any() and result.model.has_id[split.train[:, 1]].all()
    off = train_ncf_model(split, NCFConfig(**{**config.to_dict(), "item_text": False}), progress=False,
                          item_text=text)
    assert off.model.text_projection is None
    assert torch.equal(result.model._table()[10:split.num_items], off.model.item_embedding.weight[10:split.num_items])
    untimed = [[{k: v for k, v in record.items() if "seconds" not in k} for record in run.history]
               for run in (result, off)]
    assert untimed[0] == untimed[1]  # the same training, to the bit
    assert not torch.allclose(result.model._table()[never], off.model.item_embedding.weight[never])
    path = save_trained(tmp_path / "text.pt", result, split, {}, "checksum", "tiny")
    loaded = model_from_checkpoint(load_ncf_checkpoint(path))
    assert torch.equal(loaded.item_text[:split.num_items], torch.as_tensor(text))
    assert torch.allclose(loaded._table(), result.model.eval()._table())
