"""Run the workbook's notebooks in order with papermill, into one run folder.

    python -m neo_ml.pipeline --config configs/default.yaml --run-name NAME

The config is YAML. At the top level: ``seed`` and the datasets, each named
once (``interactions``: ml-100k, a JSON file or a database URL;
``text_corpus``: 20ng, 20ng-dewey, r8, r52 or a JSON file). Then one section
per stage (``prepare``, ``ncf``, ``classification``, ``benchmark``) whose keys
are the notebook's ``parameters`` in lower case; in ``ncf`` and
``classification`` any ``NCFConfig`` or ``ClassifierConfig`` field may be set
too, flat (``epochs: 20``) or under ``config:``, and the config is built and
checked (its ``__post_init__``) before anything runs, as the command and the
notebook check it. Unknown sections or keys are refused. Every notebook also
gets ``RUN_DIR``, ``SEED`` and the datasets it takes.

``outputs/runs/<run>/`` receives the executed notebooks, ``models/``,
``metrics/<stage>.json``, ``plots/*.png``, ``report.md`` and
``manifest.json`` (parameters, package versions, data checksums, git commit,
timings). A failing cell stops the run with the notebook, the cell and the
error named; the partly executed notebook stays in the run folder.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import sys
import time
from pathlib import Path

from neo_ml import paths
from neo_ml.classification.model import ClassifierConfig
from neo_ml.errors import NeoMLError, brief
from neo_ml.files import git_commit, package_versions, write_json
from neo_ml.ncf.config import NCFConfig
from neo_ml.tracking import Tracker

STAGES = {"prepare": "01_prepare_data.ipynb", "ncf": "02_train_ncf.ipynb",
          "classification": "03_train_classification.ipynb", "benchmark": "04_benchmark.ipynb"}
DATASETS = ("interactions", "text_corpus")  # top-level keys, named once, given to every notebook that takes them
INJECTED = ("RUN_DIR", "SEED", *(name.upper() for name in DATASETS))
TRACKING_KEYS = ("tracking", "tracking_uri")  # top-level: MLflow on or off, and its store
CONFIGS = {"ncf": NCFConfig, "classification": ClassifierConfig}  # the stages whose notebook builds a config


class PipelineError(NeoMLError):
    pass


def notebooks_dir() -> Path:
    return paths.PROJECT_ROOT / "notebooks"


def notebook_parameters(notebook: Path) -> dict[str, object]:
    """The names and default values of a notebook's ``parameters`` cell."""
    import papermill

    return {name: info["default"] for name, info in papermill.inspect_notebook(str(notebook)).items()}


def _read_yaml(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise PipelineError(f"{path}: config file not found")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where present: the same YAML, faster
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # also a 5,000-digit number, deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else " ".join(str(exc).split())[:300]
        raise PipelineError(f"{path}: not valid YAML: {reason}") from None
    if not isinstance(document, dict):
        raise PipelineError(f"{path}: expected a mapping of stage sections, got {type(document).__name__}")
    return document


def tracking_options(path: str | Path) -> dict[str, object]:
    """The YAML's ``tracking`` (true by default) and ``tracking_uri`` (None: $MLFLOW_TRACKING_URI or the
    embedded store)."""
    document = _read_yaml(Path(path))
    enabled, uri = document.get("tracking", True), document.get("tracking_uri")
    if not isinstance(enabled, bool):
        raise PipelineError(f"{path}: tracking must be true or false, got {brief(enabled)}")
    if uri is not None and not isinstance(uri, str):
        raise PipelineError(f"{path}: tracking_uri must be a URI string, got {brief(uri)}")
    return {"enabled": enabled, "uri": uri}


def load_config(path: str | Path) -> dict[str, dict[str, object]]:
    """Per stage, the notebook parameters (UPPER_CASE) the config sets; unknown keys are an error."""
    path = Path(path)
    document = _read_yaml(path)
    unknown = set(document) - {"seed", *DATASETS, *STAGES, *TRACKING_KEYS}
    if unknown:
        raise PipelineError(f"{path}: unknown section(s) {brief(sorted(map(str, unknown)))}; "
                            f"expected seed, {', '.join(DATASETS)}, {', '.join(TRACKING_KEYS)} and {list(STAGES)}")
    seed = document.get("seed", 42)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise PipelineError(f"{path}: seed must be an integer, got {brief(seed)}")
    datasets = {name.upper(): document[name] for name in DATASETS if name in document}
    return {stage: _stage_parameters(path, stage, document.get(stage) or {}, seed, datasets) for stage in STAGES}


def _stage_parameters(path: Path, stage: str, section, seed: int, datasets: dict) -> dict[str, object]:
    """One section's notebook parameters (UPPER_CASE), with the injected ones and, for a training stage,
    its config merged over the notebook's default and checked."""
    notebook = STAGES[stage]
    if not isinstance(section, dict):
        raise PipelineError(f"{path}: section {stage!r} must be a mapping of parameters")
    defaults = notebook_parameters(notebooks_dir() / notebook)
    named_twice = sorted({"data", *DATASETS} & set(map(str, section)))
    if named_twice:
        raise PipelineError(f"{path}: {stage}.{named_twice[0]}: a dataset is named once, at the top level "
                            f"(interactions: ml-100k, text_corpus: r8), not in a stage section")
    values = {str(key): value for key, value in section.items()}
    config_class = CONFIGS.get(stage)
    if config_class is not None:
        values["config"] = _stage_config(path, stage, values, config_class, defaults, seed)
    known = set(defaults) - set(INJECTED)
    wrong = sorted(key for key in values if key.upper() not in known)
    if wrong:
        raise PipelineError(f"{path}: section {stage!r}: unknown key(s) {brief(wrong)}; "
                            f"{notebook} takes {sorted(k.lower() for k in known)}"
                            + (f" and any {config_class.__name__} field" if config_class else ""))
    taken = {key: value for key, value in datasets.items() if key in defaults}
    return {key.upper(): value for key, value in values.items()} | taken | {"SEED": seed}


def _stage_config(path: Path, stage: str, values: dict, config_class: type, defaults: dict, seed: int) -> dict:
    """The stage's config keys (flat fields and ``config:``) over the notebook's ``CONFIG``, checked by
    building the config, as the notebook will; the keys are taken out of ``values``."""
    given = values.pop("config", None) or {}
    if not isinstance(given, dict):
        raise PipelineError(f"{path}: {stage}.config must be a mapping of {config_class.__name__} fields")
    flat = {key: values.pop(key) for key in [k for k in values if k in config_class.__dataclass_fields__]}
    twice = sorted(set(flat) & set(given))
    if twice:
        raise PipelineError(f"{path}: {stage}: {twice[0]} is set both flat and under config:; keep one")
    merged = {**ast.literal_eval(defaults.get("CONFIG") or "{}"), **given, **flat}
    try:
        config_class.from_mapping({"seed": seed, **merged}, "config")
    except NeoMLError as exc:
        raise PipelineError(f"{path}: section {stage!r}: {exc}") from None
    return merged


def check_inputs(config: dict[str, dict[str, object]], source: str) -> None:
    """Data files named by the config must exist before any training starts."""
    for stage, values in config.items():
        for key, value in values.items():
            if isinstance(value, str) and value.endswith((".json", ".db", ".csv")) and not Path(value).is_file():
                where = key.lower() if key.lower() in DATASETS else f"{stage}.{key.lower()}"
                raise PipelineError(f"{source}: {where}: data file {value} not found")


def run_stage(stage: str, parameters: dict, run_dir: Path, progress: bool = True) -> float:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source, target = notebooks_dir() / STAGES[stage], run_dir / "notebooks" / STAGES[stage]
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(str(source), str(target), parameters={**parameters, "RUN_DIR": str(run_dir)},
                                   kernel_name="python3", progress_bar=progress, cwd=str(notebooks_dir()))
    except PapermillExecutionError as exc:
        raise PipelineError(f"{STAGES[stage]}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue} "
                            f"(partly executed notebook: {target})") from None
    return time.perf_counter() - started


def run_pipeline(config_path: str | Path, run_name: str | None = None, stages: list[str] | None = None,
                 progress: bool = True, tracking_uri: str | None = None, tracking: bool | None = None) -> Path:
    """The stages in order into ``outputs/runs/<run>/``, tracked as one MLflow run with a child run per stage
    (``tracking``/``tracking_uri`` given here win over the YAML's)."""
    from neo_ml.workbook.reporting import write_report  # matplotlib, only when a run writes its report
    from neo_ml.workbook.tracking import track_pipeline, track_stage

    config = load_config(config_path)
    options = tracking_options(config_path)
    check_inputs(config, str(config_path))
    run_name = run_name or f"{Path(config_path).stem}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    run_dir = paths.outputs_dir() / "runs" / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"run": run_name, "config": str(config_path), "parameters": config, "git_commit": git_commit(),
                "package_versions": package_versions(), "started_at": dt.datetime.now(dt.UTC).isoformat(),
                "seconds": {}}
    parent = Tracker(tracking_uri or options["uri"],
                     enabled=options["enabled"] if tracking is None else tracking).start(f"pipeline {run_name}")
    for stage in stages or list(STAGES):
        print(f"[{stage}] {STAGES[stage]}", file=sys.stderr, flush=True)
        child = parent.child(stage)
        try:
            manifest["seconds"][stage] = run_stage(stage, config[stage], run_dir, progress)
        except BaseException:
            track_stage(child, stage, config[stage], run_dir, failed=True)
            parent.finish(failed=True)
            raise
        track_stage(child, stage, config[stage], run_dir)
        write_json(run_dir / "manifest.json", manifest)
    manifest["data_checksums"] = collect_checksums(run_dir)
    write_json(run_dir / "manifest.json", manifest)
    write_report(run_dir, manifest)
    track_pipeline(parent, manifest, run_dir)
    return run_dir


def collect_checksums(run_dir: Path) -> dict[str, str]:
    checksums = {}
    for path in sorted((run_dir / "metrics").glob("*.json")):
        checksums |= json.loads(path.read_text()).get("data_checksums", {})
    return checksums
