"""The recommender's text path: items read from their sentence embedding beside (or without) an id vector."""

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


def test_an_item_without_an_id_vector_is_its_text_alone_and_the_pad_is_zero():
    model = _model().eval()
    torch.nn.init.normal_(model.item_embedding.weight)
    table = model._table()
    projected = model.text_projection(model.item_text)
    assert torch.allclose(table[:10], projected[:10])
    assert torch.allclose(table[10:ITEMS], projected[10:ITEMS] + model.item_embedding.weight[10:ITEMS])
    assert not table[ITEMS].any()


def test_training_leaves_out_the_id_vectors_of_a_share_of_the_items_anew_at_each_draw():
    model = _model(id_dropout=0.5).train()
    with torch.no_grad():
        torch.nn.init.normal_(model.item_embedding.weight)
    projected = model.text_projection(model.item_text[:ITEMS])
    draws = [(model._table()[:ITEMS] - projected).abs().sum(1) > 1e-6 for _ in range(2)]
    for with_id in draws:
        assert not with_id[:10].any()  # never an id where there is none
        assert 5 <= int(with_id[10:].sum()) <= 15  # about half of the 20 ids kept
    assert not torch.equal(draws[0], draws[1])


def test_the_evaluation_table_follows_the_weights_after_training_and_new_texts():
    model = _model().eval()
    before = model._table().clone()
    assert model._table() is model._table()  # computed once per set of weights
    with torch.no_grad():
        model.text_projection[-1].bias.add_(1.0)
    model.train().eval()
    assert not torch.allclose(model._table()[:ITEMS], before[:ITEMS])
    model.set_item_text(torch.zeros(ITEMS, WIDTH), torch.ones(ITEMS, dtype=torch.bool))
    nothing = model.text_projection(torch.zeros(WIDTH))
    assert torch.allclose(model._table()[:ITEMS], model.item_embedding.weight[:ITEMS] + nothing)


@pytest.mark.parametrize("sampled", [False, True])
def test_an_item_no_one_took_in_training_is_no_rival_in_the_training_softmax(sampled):
    """Such an item stands for a resource added after training: it is not in the catalogue yet, and
    ranking against it would teach the text path that texts like its are never taken."""
    model = _model().eval()  # items 0-9 have no id vector
    inputs, targets = torch.tensor([[12, 13, 14, 15]]), torch.tensor([[13, 14, 15, 16]])
    negatives = torch.tensor([3, 11, 20, 25]) if sampled else None
    loss = model.sequence_loss(inputs, targets, negatives)
    logits = model.encode(inputs)[0] @ model._table()[:ITEMS].T
    rivals = torch.arange(ITEMS) >= 10 if not sampled else torch.isin(torch.arange(ITEMS), torch.tensor([11, 20, 25]))
    expected = []
    for position, target in enumerate(targets[0].tolist()):
        candidates = rivals.clone()
        candidates[target] = True
        read = torch.isin(torch.arange(ITEMS), inputs[0, :position + 1])
        row = (logits[position] - model.repeat.exp() * read).masked_fill(~candidates, -torch.inf)
        expected.append(-torch.log_softmax(row, 0)[target])
    assert torch.allclose(loss, torch.stack(expected).mean(), atol=1e-5)


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


def test_texts_train_into_the_checkpoint_and_an_item_never_taken_has_no_id_vector(synthetic_split, tmp_path):
    never = np.arange(10)
    split = synthetic_split.without_item_interactions(never)
    assert not np.isin(split.train[:, 1], never).any() and len(split.train) < len(synthetic_split.train)
    assert np.array_equal(split.test_items, synthetic_split.test_items)
    text = np.random.default_rng(0).normal(size=(split.num_items, WIDTH)).astype(np.float32)
    config = NCFConfig(epochs=2, embedding_dim=16, history_length=4, taste_length=4, seed=3)
    result = train_ncf_model(split, config, progress=False, item_text=text)
    assert result.model.text_projection is not None
    assert not result.model.has_id[never].any() and result.model.has_id[split.train[:, 1]].all()
    path = save_trained(tmp_path / "text.pt", result, split, {}, "checksum", "tiny")
    loaded = model_from_checkpoint(load_ncf_checkpoint(path))
    assert torch.equal(loaded.item_text[:split.num_items], torch.as_tensor(text))
    assert torch.allclose(loaded._table(), result.model.eval()._table())
    off = train_ncf_model(split, NCFConfig(**{**config.to_dict(), "item_text": False}), progress=False,
                          item_text=text)
    assert off.model.text_projection is None
