"""Top-layer fine-tuning on cached lower layers, on a tiny real subset with short sequences."""

import random

import numpy as np
import pytest
import torch

from neo_ml.classification.checkpoint import load_classifier, save_classifier
from neo_ml.classification.model import ClassifierConfig, TaxonomyClassifier
from neo_ml.classification.tuning import LowerLayerCache, transformer_layers, tune_top_layers
from neo_ml.data.corpora import load_text_corpus
from neo_ml.errors import NeoMLError, TrainingDivergedError
from neo_ml.sentence_encoder import embed, load_encoder


@pytest.fixture(scope="module")
def subset():
    train, _ = load_text_corpus("20ng-dewey")
    return random.Random(1).sample(train, 120)


def test_cached_lower_layers_plus_top_layers_equal_the_full_forward(subset):
    tokenizer, model = load_encoder()
    texts = [text for text, _ in subset[:12]]
    cache = LowerLayerCache(texts, tokenizer, model, split_layer=6, max_length=48, batch_size=5)
    batch = tokenizer(texts, truncation=True, max_length=48, padding=True, return_tensors="pt")
    with torch.inference_mode():
        full = model(**batch).last_hidden_state
    for n, state in enumerate(cache.states):
        assert state.shape[0] == int(batch["attention_mask"][n].sum())
        assert torch.allclose(state.float(), full[n, :len(state)], atol=2e-2)


def test_tuning_changes_only_the_top_layers_and_its_embeddings_match_the_tuned_encoder(subset):
    tokenizer, model = load_encoder()
    before = [layer.state_dict()["output.dense.weight"].clone() for layer in transformer_layers(model)]
    texts = [text for text, _ in subset]
    labels = sorted({code for _, codes in subset for code in codes})
    targets = np.array([[code in codes for code in labels] for _, codes in subset], dtype=int)
    rows = np.arange(len(texts))
    embeddings, result = tune_top_layers(texts, targets, rows[:90], rows[90:], tokenizer, model, layers=2,
                                         epochs=3, learning_rate=1e-4, max_length=32, batch_size=16, seed=0)
    after = [layer.state_dict()["output.dense.weight"] for layer in transformer_layers(model)]
    assert all(torch.equal(b, a) for b, a in zip(before[:4], after[:4], strict=True))
    assert not any(torch.equal(b, a) for b, a in zip(before[4:], after[4:], strict=True))
    assert [row["epoch"] for row in result.epochs] == [1, 2, 3] and 1 <= result.best_epoch <= 3
    assert result.epochs[-1]["train_loss"] < result.epochs[0]["train_loss"]
    # the written-back encoder computes the same embeddings as the tuning path
    assert np.allclose(embeddings, embed(texts, tokenizer, model, max_length=32), atol=2e-2)


def test_a_tuned_classifier_survives_its_checkpoint(subset, tmp_path):
    model = TaxonomyClassifier(ClassifierConfig(max_length=32, epochs=1, seed=0))
    metrics = model.fit(subset)
    assert metrics["protocol"] == "validation split" and metrics["held_out_samples"] == 24
    assert metrics["best_epoch"] == 1 and len(metrics["tuning_epochs"]) == 1
    texts = [text for text, _ in subset[:8]]
    save_classifier(model, tmp_path / "tuned", metrics)
    loaded = load_classifier(tmp_path / "tuned")
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-5)


def test_encoders_without_bert_layers_are_refused():
    with pytest.raises(NeoMLError, match="BERT-style encoder"):
        transformer_layers(torch.nn.Linear(2, 2))


def test_a_nan_loss_stops_tuning_with_the_epoch_and_batch_named(subset):
    tokenizer, model = load_encoder()
    texts = [text for text, _ in subset[:40]]
    targets = np.array([[code == "000" for code in ("000", "300")] for _ in texts], dtype=int)
    rows = np.arange(len(texts))
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, batch \d+: the training loss is nan; stopped"):
        tune_top_layers(texts, targets, rows[:30], rows[30:], tokenizer, model, layers=1, epochs=1,
                        learning_rate=float("nan"), max_length=16, batch_size=8, seed=0)
