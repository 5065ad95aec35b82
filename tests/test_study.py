"""A study of either model (``neo_ml.search``), with a trial that trains nothing: the base config runs first,
workers share the trial count, a full study runs no trial, and a study with nothing completed is named."""

import optuna
import pytest

from neo_ml.errors import NeoMLError
from neo_ml.ncf.config import NCFConfig
from neo_ml.search import Search, run_study, study_summary


def fake_search(calls: list, prune: bool = False) -> Search:
    def trial(trial, history):
        value = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        calls.append(value)
        if prune:
            raise optuna.TrialPruned()
        return value

    return Search("ncf", NCFConfig(), "data", "sum", trial, {"learning_rate": 5e-3}, lambda *_: {})


def test_the_base_config_is_trial_zero_and_a_full_study_runs_no_trial(tmp_path):
    storage, calls = f"sqlite:///{tmp_path / 'o.db'}", []
    study = run_study(fake_search(calls), "s", 4, storage)
    summary = study_summary(study, fake_search([]))
    assert len(calls) == 4 and calls[0] == 5e-3
    assert summary["base_trial"] == 0 and summary["base_validation"] == 5e-3 and summary["finished_trials"] == 4
    assert summary["best_validation"] == max(calls)
    run_study(fake_search(calls), "s", 4, storage, worker=1)  # a second worker finds the study full
    assert len(calls) == 4
    run_study(fake_search(calls), "s", 6, storage, worker=1)  # asked for more: only the missing ones
    assert len(calls) == 6 and len(optuna.load_study(study_name="s", storage=storage).trials) == 6


def test_a_study_with_no_completed_trial_is_refused_by_name(tmp_path):
    study = run_study(fake_search([], prune=True), "all-pruned", 2, f"sqlite:///{tmp_path / 'o.db'}")
    with pytest.raises(NeoMLError, match="'all-pruned': no trial completed"):
        study_summary(study, fake_search([]))


def test_every_trial_is_a_nested_run_of_the_study_run(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from neo_ml.tracking import Tracker

    monkeypatch.delenv("NEO_ML_NO_TRACKING", raising=False)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(store).start("tune ncf s")
    run_study(fake_search([]), "s", 3, f"sqlite:///{tmp_path / 'o.db'}", tracker=tracker)
    tracker.finish()
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("neo-ml").experiment_id])
    trials = sorted((run for run in runs if run.data.tags.get("mlflow.parentRunId") == tracker.run_id),
                    key=lambda run: int(run.data.params["trial"]))
    assert [run.info.run_name for run in trials] == ["trial 0", "trial 1", "trial 2"]
    assert trials[0].data.params["learning_rate"] == "0.005" and "objective" in trials[0].data.metrics
