"""The classifier's search: frozen trials share one set of embeddings, tuned trials report their epochs, and
``python -m neo_ml.tune classifier`` scores the base config first and retrains the best into a checkpoint."""

import json

import numpy as np
import optuna
import yaml

from neo_ml.classification.model import ClassifierConfig, TaxonomyClassifier
from neo_ml.classification.search import run_trial

SMALL = {"max_length": 64, "augment_below": 0, "folds": 3}


def test_frozen_models_share_the_embedding_cache(dewey_subset, monkeypatch):
    texts = [text for text, _ in dewey_subset[0][:40]]
    cache: dict = {}
    first = TaxonomyClassifier(ClassifierConfig(**SMALL), embedding_cache=cache).embed(texts)
    assert len(cache) == len(set(texts))
    second = TaxonomyClassifier(ClassifierConfig(**SMALL), embedding_cache=cache)
    monkeypatch.setattr(second, "_encode", lambda *_: (_ for _ in ()).throw(AssertionError("encoded again")))
    np.testing.assert_array_equal(second.embed(texts[::-1]), first[::-1])
    tuned = TaxonomyClassifier(ClassifierConfig(**SMALL, epochs=1), embedding_cache=cache)
    monkeypatch.setattr(tuned, "_encode", lambda texts, progress=False: np.zeros((len(texts), 384)))
    assert not tuned.embed(texts[:2]).any()  # a model that tunes its encoder never reads the cache


def test_a_tuned_trial_reports_each_epoch(dewey_subset):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lexical_C": 1.0, "semantic_C": 10.0, "epochs": 2, "learning_rate": 1e-4,
                         "tuned_layers": 1})
    history: list = []
    study.optimize(lambda trial: run_trial(trial, dewey_subset[0][:200], ClassifierConfig(**SMALL), history),
                   n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and 0 <= trial.value <= 1
    assert sorted(trial.intermediate_values) == [1, 2] == [record["epoch"] for record in history]


def test_tune_classifier_command(tmp_path, dewey_subset, capsys):
    from neo_ml.commands.tune import main
    from neo_ml.data.text import samples_to_document

    data = tmp_path / "small.json"
    data.write_text(json.dumps(samples_to_document(dewey_subset[0][:200])))
    output = tmp_path / "tuned"
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in SMALL.items()]
    assert main(["classifier", "--data", str(data), "--trials", "2", "--storage", f"sqlite:///{tmp_path / 'o.db'}",
                 "--output", str(output), "--no-tracking", *flags]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["finished_trials"] == 2 and result["base_trial"] == 0
    assert result["best_validation"] >= result["base_validation"] > 0
    section = yaml.safe_load(output.with_suffix(".yaml").read_text())["classification"]
    assert section["max_length"] == 64 and section["augment_below"] == 0  # the base flags are kept
    assert ClassifierConfig(**section).to_dict() == {**ClassifierConfig().to_dict(), **section}
    assert (output / "manifest.json").is_file()
