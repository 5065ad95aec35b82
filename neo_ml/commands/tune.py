"""Search the hyperparameters of either model with Optuna, tracked in MLflow.

    python -m neo_ml.tune ncf --data ml-100k --trials 30 --study-name ncf-ml100k
    python -m neo_ml.tune classifier --data r8 --trials 20 --max-length 128
    python -m neo_ml.tune ncf --data ml-100k --trials 30 --storage postgresql+psycopg://host/optuna \\
        --study-name shared   # every worker that names the same storage and study shares it

Each trial trains one drawn config (the spaces: ``neo_ml.ncf.search``, ``neo_ml.classification.search``)
and is scored on validation data only: the recommender's validation items (NDCG@10), the classifier's
held-out training folds (micro-F1); a median pruner stops trials that fall behind at an epoch. The first
trial of a new study is the base config (the flags as given). Workers naming one storage and study share
its ``--trials``; give each its own ``--worker N``. Every trial is a nested MLflow run of the study's run.
With ``--output``, the best config is trained by the normal training run, tested once, saved there and
registered, and written as ``<output>.yaml`` (a pipeline config section). The study is ``neo_ml.search``;
config flags are the model's (``NCFConfig`` for ncf, ``ClassifierConfig`` for classifier).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from neo_ml.commands import build_parser, config_from, run_command
from neo_ml.errors import NeoMLError
from neo_ml.files import git_commit, package_versions
from neo_ml.ncf.config import NCFConfig
from neo_ml.search import CONFIGS, classifier_search, ncf_search, retrain_best, run_study, study_summary
from neo_ml.tracking import Tracker


@dataclass
class TuneArguments:
    model: str = field(metadata={"help": "ncf | classifier", "choices": list(CONFIGS)})
    data: str = field(metadata={"help": "ncf: ml-100k | FILE.json | DATABASE_URL; classifier: 20ng | r8 | "
                                        "r52 | ... | FILE.json"})
    trials: int = field(default=30, metadata={"help": "finished trials the study should hold"})
    study_name: str | None = field(default=None, metadata={"help": "Optuna study name (default: neo-ml-MODEL)"})
    storage: str | None = field(default=None, metadata={
        "help": "Optuna storage URL (default: sqlite:///outputs/optuna.db); shared by all its workers"})
    timeout: float | None = field(default=None, metadata={"help": "seconds this worker searches at most"})
    worker: int = field(default=0, metadata={
        "help": "this worker's number among those sharing the study (0, 1, ...): seeds its sampler apart"})
    output: Path | None = field(default=None, metadata={"help": "retrain the best config into this checkpoint"})
    split_seed: int = field(default=2017, metadata={"help": "ncf: seed of the evaluation negatives"})
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
        self.study_name = self.study_name or f"neo-ml-{self.model}"


def tune(args: TuneArguments, base) -> dict:
    if args.model == "ncf":
        from neo_ml.ncf.data import load_training_data

        search = ncf_search(load_training_data(args.data), base, args.split_seed)
    else:
        search = classifier_search(args.data, base)
    tracker = Tracker(args.tracking_uri, enabled=not args.no_tracking).start(f"tune {args.model} {args.study_name}")
    tracker.log_params({"study": args.study_name, "model": args.model, "data": search.data_name,
                        "data_checksum": search.data_checksum, "base_config": base.to_dict(),
                        "git_commit": git_commit() or "unknown", "packages": package_versions()})
    study = run_study(search, args.study_name, args.trials, args.storage, args.worker, args.timeout, tracker)
    result = study_summary(study, search)
    tracker.log_metrics({"best_objective": result["best_validation"], "finished_trials": result["finished_trials"]})
    if args.output is not None:
        result |= retrain_best(study, search, args.output, tracker)
    tracker.finish()
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):  # the model is positional: python -m neo_ml.tune ncf ...
        argv = ["--model", *argv[:1], *argv[1:]]
    model = argv[argv.index("--model") + 1] if "--model" in argv[:-1] else "ncf"
    config_class = CONFIGS.get(model, NCFConfig)  # an unknown model is refused by the parser's choices
    parser = build_parser("python -m neo_ml.tune", __doc__, TuneArguments, config_class)
    namespace = parser.parse_args(argv)
    return run_command(lambda: tune(config_from(namespace, TuneArguments), config_from(namespace, config_class)),
                       namespace.debug)


if __name__ == "__main__":
    sys.exit(main())
