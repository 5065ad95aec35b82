"""The recommender's hyperparameter search with Optuna: the search space and one trial's objective.

The objective is the validation NDCG@10 of the epoch a trial keeps (``train_ncf_model`` chooses it on
validation; the test items are never scored here). Each validated epoch is reported to the study's pruner,
so a median pruner stops a trial whose curve falls below the others' at the same epoch.

Search space (SASRec, the default model), around its defaults:

| field | range |
| --- | --- |
| learning_rate | 3e-4 to 1e-2, log |
| embedding_dim | 32, 64, 128 |
| dropout | 0.0 to 0.5 |
| history_length | 50, 100, 200 |
| softmax_negatives | 100, 400, all items (None) |
| weight_decay | 0, 1e-6, 1e-5, 1e-4 |
| num_blocks | 1, 2, 3 |
"""

from __future__ import annotations

from dataclasses import replace

from neo_ml.data.splits import LeaveOneOutSplit
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.train import train_ncf_model
from neo_ml.serving import pruning_reporter

OBJECTIVE = "val_ndcg@10"
SEARCHED = ("learning_rate", "embedding_dim", "dropout", "history_length", "softmax_negatives", "weight_decay",
            "num_blocks")


def base_params(base: NCFConfig) -> dict:
    """The searched fields as ``base`` sets them: enqueued as a study's first trial, so the default config
    is scored in the same study, on the same split, as every drawn one."""
    return {name: getattr(base, name) for name in SEARCHED}


def suggest_config(trial, base: NCFConfig) -> NCFConfig:
    """``base`` with the searched fields drawn by ``trial`` (checked by ``NCFConfig.__post_init__``)."""
    return replace(
        base,
        learning_rate=trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
        embedding_dim=trial.suggest_categorical("embedding_dim", [32, 64, 128]),
        dropout=trial.suggest_float("dropout", 0.0, 0.5),
        history_length=trial.suggest_categorical("history_length", [50, 100, 200]),
        softmax_negatives=trial.suggest_categorical("softmax_negatives", [100, 400, None]),
        weight_decay=trial.suggest_categorical("weight_decay", [0.0, 1e-6, 1e-5, 1e-4]),
        num_blocks=trial.suggest_categorical("num_blocks", [1, 2, 3]),
    )


def run_trial(trial, split: LeaveOneOutSplit, base: NCFConfig, history: list | None = None) -> float:
    """Train one drawn config on ``split`` and return its validation NDCG@10; pruned by the study's pruner
    at any epoch (``optuna.TrialPruned``). Each epoch's record is appended to ``history``."""
    result = train_ncf_model(split, suggest_config(trial, base), progress=False,
                             on_epoch=pruning_reporter(trial, OBJECTIVE, history))
    return float(result.validation_metrics[OBJECTIVE])
