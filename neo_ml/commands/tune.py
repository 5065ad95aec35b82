"""Search the recommender's hyperparameters with Optuna, tracked in MLflow.

    python -m neo_ml.tune ncf --data ml-100k --trials 30 --study-name ncf-ml100k
    python -m neo_ml.tune ncf --data ml-100k --trials 30 --storage postgresql+psycopg://host/optuna \\
        --study-name shared   # every worker that names the same storage and study shares it

Each trial trains one drawn config (``neo_ml.ncf.search``: the space, the objective) and is scored on the
validation items only; a median pruner stops trials whose per-epoch validation NDCG@10 falls below the
others'. Workers stop when the study holds ``--trials`` finished trials (complete or pruned), however
many workers share it; give each worker its own ``--worker N`` (same seed, same draws otherwise).
Every trial is a nested MLflow run of the study's run. With ``--output``, the best config is then
trained by the normal training run, tested once, saved there and registered, and its config written
beside it as YAML (``<output>.yaml``) for the pipeline's ``ncf`` section.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from neo_ml.commands import build_parser, config_from, run_command
from neo_ml.errors import NeoMLError
from neo_ml.files import checksum_path
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.data import load_training_data
from neo_ml.tracking import NCF_MODEL, Tracker, track_training


@dataclass
class TuneArguments:
    model: str = field(metadata={"help": "ncf", "choices": ["ncf"]})
    data: str = field(metadata={"help": "ml-100k | FILE.json | DATABASE_URL"})
    trials: int = field(default=30, metadata={"help": "finished trials the study should hold"})
    study_name: str = field(default="neo-ml-ncf", metadata={"help": "Optuna study name"})
    storage: str | None = field(default=None, metadata={
        "help": "Optuna storage URL (default: sqlite:///outputs/optuna.db); shared by all its workers"})
    timeout: float | None = field(default=None, metadata={"help": "seconds this worker searches at most"})
    worker: int = field(default=0, metadata={
        "help": "this worker's number among those sharing the study (0, 1, ...): seeds its sampler apart"})
    output: Path | None = field(default=None, metadata={"help": "retrain the best config into this checkpoint"})
    split_seed: int = field(default=2017, metadata={"help": "seed of the evaluation negatives"})
    tracking_uri: str | None = field(default=None, metadata={"help": "MLflow store"})
    no_tracking: bool = field(default=False, metadata={"help": "log nothing to MLflow"})
    debug: bool = field(default=False, metadata={"help": "show tracebacks"})

    def __post_init__(self):
        if self.worker < 0:
            raise NeoMLError(f"--worker must be >= 0, got {self.worker}")
        if self.trials < 1:
            raise NeoMLError(f"--trials must be >= 1, got {self.trials}")
        if self.timeout is not None and self.timeout <= 0:
            raise NeoMLError(f"--timeout must be > 0 seconds, got {self.timeout}")


def default_storage() -> str:
    from neo_ml import paths

    paths.outputs_dir().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{paths.outputs_dir() / 'optuna.db'}"


def search(args: TuneArguments, base: NCFConfig) -> dict:
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from neo_ml.data.splits import leave_one_out_split
    from neo_ml.ncf.search import run_trial

    data = load_training_data(args.data)
    split = leave_one_out_split(data.interactions, seed=args.split_seed, hold_out_test=data.hold_out_test)
    study = optuna.create_study(study_name=args.study_name, storage=args.storage or default_storage(),
                                direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=base.seed + 1000 * args.worker),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
    parent = Tracker(args.tracking_uri, enabled=not args.no_tracking).start(f"tune ncf {args.study_name}")
    parent.log_params({"study": args.study_name, "data": data.name, "data_checksum": data.checksum,
                       "base_config": base.to_dict()})

    def objective(trial):
        child = parent.child(f"trial {trial.number}")
        history: list[dict] = []
        try:
            value = run_trial(trial, split, base, history)
            child.log_metrics({"objective_val_ndcg@10": value})
            return value
        except optuna.TrialPruned:
            child.set_tag("state", "pruned")
            raise
        finally:  # the params exist only once the trial has drawn them, inside run_trial
            child.log_params({"trial": trial.number, **trial.params})
            child.log_history(history)
            child.finish()

    done = MaxTrialsCallback(args.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
    study.optimize(objective, n_trials=args.trials, timeout=args.timeout, callbacks=[done])
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    best = study.best_trial
    parent.log_metrics({"best_val_ndcg_at_10": best.value, "finished_trials": len(finished)})
    result = {"study": args.study_name, "finished_trials": len(finished), "best_trial": best.number,
              "best_val_ndcg@10": best.value, "best_params": best.params}
    if args.output is not None:
        result |= retrain_best(args, data, best.params, base, parent)
    parent.finish()
    return result


def retrain_best(args: TuneArguments, data, params: dict, base: NCFConfig, parent: Tracker) -> dict:
    """The best config through the normal training run: tested once, saved, registered, written as YAML."""
    from dataclasses import replace

    import yaml

    from neo_ml.ncf.run import run_training

    config = replace(base, **params)
    metrics, result, _ = run_training(data, config, args.output, args.split_seed, progress=False)
    track_training(parent.child("best config, retrained"), NCF_MODEL,
                   {"config": config.to_dict(), "data": data.name, "data_checksum": data.checksum},
                   result.history, metrics, [args.output, checksum_path(args.output)])
    config_path = args.output.with_suffix(".yaml")
    config_path.write_text(yaml.safe_dump({"ncf": params}, sort_keys=True))
    return {"output": str(args.output), "config_yaml": str(config_path),
            **{k: v for k, v in metrics.items() if k.startswith("test_")}}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):  # the model is positional: python -m neo_ml.tune ncf ...
        argv = ["--model", *argv[:1], *argv[1:]]
    parser = build_parser("python -m neo_ml.tune", __doc__, TuneArguments, NCFConfig)
    namespace = parser.parse_args(argv)
    return run_command(lambda: search(config_from(namespace, TuneArguments), config_from(namespace, NCFConfig)),
                       namespace.debug)


if __name__ == "__main__":
    sys.exit(main())
