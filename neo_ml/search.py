"""Hyperparameter search of either model with Optuna: one study, its trials tracked in MLflow.

A study's trials draw configs from the model's space (``neo_ml.ncf.search``,
``neo_ml.classification.search``) and are scored on validation data only. A new study's first trial is
the base config, so every draw is compared with it on the same split. Workers that name one storage and
one study share it: each stops once the study holds ``trials`` finished trials (complete or pruned), and
each seeds its sampler apart by its ``worker`` number. ``retrain_best`` trains the best config by the
normal training run (tested once, saved, registered) and writes it as a pipeline YAML section.
``python -m neo_ml.tune`` and notebook 02 call these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from neo_ml.classification.model import ClassifierConfig
from neo_ml.errors import NeoMLError
from neo_ml.ncf.config import NCFConfig
from neo_ml.tracking import Tracker

CONFIGS = {"ncf": NCFConfig, "classifier": ClassifierConfig}
PIPELINE_SECTIONS = {"ncf": "ncf", "classifier": "classification"}


@dataclass
class Search:
    """What a study needs of one model: its data, one trial, the base config and the retraining."""

    model: str
    base: NCFConfig | ClassifierConfig
    data_name: str
    data_checksum: str
    trial: Callable  # (optuna trial, history list) -> validation figure
    base_params: dict
    retrain: Callable  # (config, output, tracker) -> final metrics


def ncf_search(data, base: NCFConfig, split_seed: int = 2017, split=None) -> Search:
    """The recommender's search on ``data`` (loaded ``TrainingData``), on ``split`` (default: the NCF-LOO
    split of ``split_seed``)."""
    from neo_ml.data.splits import leave_one_out_split
    from neo_ml.ncf import search
    from neo_ml.ncf.run import run_training, track_run

    split = split or leave_one_out_split(data.interactions, seed=split_seed, hold_out_test=data.hold_out_test)

    def retrain(config: NCFConfig, output: Path, tracker: Tracker) -> dict:
        metrics, result, _ = run_training(data, config, output, split_seed, progress=False)
        track_run(tracker, data, config, split_seed, result, metrics, output)
        return metrics

    return Search("ncf", base, data.name, data.checksum,
                  lambda trial, history: search.run_trial(trial, split, base, history),
                  search.base_params(base), retrain)


def classifier_search(data: str, base: ClassifierConfig) -> Search:
    """The classifier's search on the training part of ``data`` (a corpus name or a JSON file)."""
    from neo_ml.classification import search
    from neo_ml.classification.data import load_text_data
    from neo_ml.classification.run import train_classifier

    train, _, checksum = load_text_data(data)  # the test part is scored only by the retrained best
    embeddings: dict = {}  # shared by the frozen-encoder trials: one encoder, one max_length

    def retrain(config: ClassifierConfig, output: Path, tracker: Tracker) -> dict:
        return train_classifier(data, config, output, progress=False, tracker=tracker)

    return Search("classifier", base, data, checksum,
                  lambda trial, history: search.run_trial(trial, train, base, history, embeddings),
                  search.base_params(base), retrain)


def default_storage() -> str:
    from neo_ml import paths

    paths.outputs_dir().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{paths.outputs_dir() / 'optuna.db'}"


def run_study(search: Search, study_name: str, trials: int, storage: str | None = None, worker: int = 0,
              timeout: float | None = None, tracker: Tracker | None = None):
    """Run this worker's share of the study (created or loaded); returns the ``optuna.Study``. With a
    started ``tracker``, every trial is a nested run of it (params, per-epoch curves, objective)."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    study = optuna.create_study(study_name=study_name, storage=storage or default_storage(), direction="maximize",
                                load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=search.base.seed + 1000 * worker),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
    if worker == 0 and not study.trials:  # the base config is trial 0: the baseline every draw must beat
        study.enqueue_trial(search.base_params)
    tracker = tracker or Tracker(enabled=False)

    def objective(trial):
        child = tracker.child(f"trial {trial.number}")
        history: list[dict] = []
        try:
            value = search.trial(trial, history)
            child.log_metrics({"objective": value})
            return value
        except optuna.TrialPruned:
            child.set_tag("state", "pruned")
            raise
        finally:  # the params exist only once the trial has drawn them
            child.log_params({"trial": trial.number, **trial.params})
            child.log_history(history)
            child.finish()

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    left = trials - len(study.get_trials(deepcopy=False, states=finished))
    if left > 0:  # the callback checks only after a trial: a worker joining a full study runs none
        done = MaxTrialsCallback(trials, states=finished)
        study.optimize(objective, n_trials=left, timeout=timeout, callbacks=[done])
    return study


def study_summary(study, search: Search) -> dict:
    """Finished trials, the best trial and the base config's trial (validation figures only)."""
    from optuna.trial import TrialState

    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if not any(t.state == TrialState.COMPLETE for t in finished):
        raise NeoMLError(f"study {study.study_name!r}: no trial completed ({len(study.trials)} in all, "
                         f"{len(finished)} pruned); search longer or look at the failed trials' errors")
    best = study.best_trial
    base = next((t for t in study.trials if t.state == TrialState.COMPLETE and t.params == search.base_params),
                None)
    return {"study": study.study_name, "model": search.model, "finished_trials": len(finished),
            "pruned_trials": sum(t.state == TrialState.PRUNED for t in finished),
            "best_trial": best.number, "best_validation": best.value, "best_params": best.params,
            "base_trial": base and base.number, "base_validation": base and base.value}


def best_config(study, search: Search):
    return replace(search.base, **study.best_params)


def retrain_best(study, search: Search, output: Path, tracker: Tracker | None = None) -> dict:
    """The best config through the normal training run: tested once, saved to ``output``, registered (with
    a started ``tracker``), and written as ``<output>.yaml`` with every field that differs from the
    defaults (the base flags and the drawn ones), as the pipeline's ``ncf`` or ``classification`` section."""
    import yaml

    config = best_config(study, search)
    metrics = search.retrain(config, output, (tracker or Tracker(enabled=False)).child("best config, retrained"))
    defaults = type(config)().to_dict()
    overrides = {name: value for name, value in config.to_dict().items() if value != defaults[name]}
    config_path = output.with_suffix(".yaml")
    config_path.write_text(yaml.safe_dump({PIPELINE_SECTIONS[search.model]: overrides}, sort_keys=True))
    return {"output": str(output), "config_yaml": str(config_path),
            **{k: v for k, v in metrics.items() if k.startswith("test_")}}
