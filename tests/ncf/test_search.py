"""The recommender's search: drawn configs are valid, the objective is validation NDCG@10, pruning stops trials."""

import optuna
import pytest

from neo_ml.data.splits import leave_one_out_split
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.search import run_trial


@pytest.fixture(scope="module")
def small_split(synthetic_frame):
    return leave_one_out_split(synthetic_frame.head(2000), seed=1)


def test_trials_score_on_validation_and_bad_ones_are_pruned(small_split):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = NCFConfig(architecture="sasrec", epochs=3, patience=3, batch_size=64, item_text=False, seed=3)
    # Prune anything below the median from the second trial on, at any epoch.
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    study.optimize(lambda trial: run_trial(trial, small_split, base), n_trials=4)
    states = [trial.state for trial in study.trials]
    complete = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    assert all(0 <= trial.value <= 1 for trial in complete) and complete
    assert all(trial.intermediate_values for trial in study.trials)  # every trial reported its epochs
    assert set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    best = study.best_trial
    assert max(best.intermediate_values.values()) == pytest.approx(best.value)  # the kept epoch's figure
