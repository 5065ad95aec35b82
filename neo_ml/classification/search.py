"""The classifier's hyperparameter search with Optuna: the search space and one trial's objective.

The objective is the held-out micro-F1 that ``TaxonomyClassifier.fit`` reports on its training data
(cross-fitted folds for a frozen encoder, the validation share when top layers are tuned); a test file is
never scored here. A tuned trial reports each epoch's validation F1 to the study's pruner.

Search space, around the defaults (the fusion weight, calibration and thresholds are chosen inside each
fit, on held-out scores):

| field | range |
| --- | --- |
| lexical_C | 0.1 to 10, log (the TF-IDF view's per-label LinearSVCs) |
| semantic_C | 1 to 100, log (the embedding view's per-label logistic regressions) |
| epochs | 0 (frozen encoder), 2, 3 (top-layer tuning) |
| learning_rate | 1e-4 to 1e-3, log; only when epochs > 0 |
| tuned_layers | 1, 2, 3; only when epochs > 0 |

``max_length`` and the encoder stay as the base config sets them, so frozen trials share one set of
embeddings (``embedding_cache``) and cost a few seconds each after the first.
"""

from __future__ import annotations

from dataclasses import replace

from neo_ml.classification.model import ClassifierConfig, TaxonomyClassifier
from neo_ml.data.text import LabeledText
from neo_ml.serving import pruning_reporter

OBJECTIVE = "f1"
TUNING_FIELDS = ("learning_rate", "tuned_layers")  # drawn only for trials that tune the encoder


def base_params(base: ClassifierConfig) -> dict:
    """The searched fields as ``base`` sets them (enqueued as a study's first trial)."""
    names = ("lexical_C", "semantic_C", "epochs") + (TUNING_FIELDS if base.epochs else ())
    return {name: getattr(base, name) for name in names}


def suggest_config(trial, base: ClassifierConfig) -> ClassifierConfig:
    """``base`` with the searched fields drawn by ``trial`` (checked by ``ClassifierConfig.__post_init__``)."""
    drawn = {"lexical_C": trial.suggest_float("lexical_C", 0.1, 10.0, log=True),
             "semantic_C": trial.suggest_float("semantic_C", 1.0, 100.0, log=True),
             "epochs": trial.suggest_categorical("epochs", [0, 2, 3])}
    if drawn["epochs"]:
        drawn |= {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True),
                  "tuned_layers": trial.suggest_categorical("tuned_layers", [1, 2, 3])}
    return replace(base, **drawn)


def run_trial(trial, samples: list[LabeledText], base: ClassifierConfig, history: list | None = None,
              embedding_cache: dict | None = None) -> float:
    """Fit one drawn config on ``samples`` and return its held-out micro-F1; a tuned trial may be pruned at
    any epoch (``optuna.TrialPruned``). Each tuning epoch's record is appended to ``history``."""
    model = TaxonomyClassifier(suggest_config(trial, base), embedding_cache=embedding_cache)
    return float(model.fit(samples, on_epoch=pruning_reporter(trial, "validation_f1", history))[OBJECTIVE])
