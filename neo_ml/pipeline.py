"""Run the workbook's notebooks in order with papermill, into one run folder.

    python -m neo_ml.pipeline --config configs/default.yaml --run-name NAME

The config is YAML: an optional top-level ``seed`` and one section per stage
(``prepare``, ``ncf``, ``classification``, ``benchmark``) whose keys are the
notebook's ``parameters`` in lower case. Unknown sections or keys are refused
before anything runs. Every notebook also gets ``RUN_DIR`` and ``SEED``.

``outputs/runs/<run>/`` receives the executed notebooks, ``models/``,
``metrics/<stage>.json``, ``plots/*.png``, ``report.md`` and
``manifest.json`` (parameters, package versions, data checksums, git commit,
timings). A failing cell stops the run with the notebook, the cell and the
error named; the partly executed notebook stays in the run folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

from neo_ml import paths
from neo_ml.checkpoints import package_versions, write_json
from neo_ml.cli import run_command
from neo_ml.errors import NeoMLError, brief

STAGES = {"prepare": "01_prepare_data.ipynb", "ncf": "02_train_ncf.ipynb",
          "classification": "03_train_classification.ipynb", "benchmark": "04_benchmark.ipynb"}
INJECTED = ("RUN_DIR", "SEED")


class PipelineError(NeoMLError):
    pass


def notebooks_dir() -> Path:
    return paths.PROJECT_ROOT / "notebooks"


def notebook_parameters(notebook: Path) -> dict[str, object]:
    """The names and default values of a notebook's ``parameters`` cell."""
    import papermill

    return {name: info["default"] for name, info in papermill.inspect_notebook(str(notebook)).items()}


def load_config(path: str | Path) -> dict[str, dict[str, object]]:
    """Per stage, the notebook parameters (UPPER_CASE) the config sets; unknown keys are an error."""
    import yaml

    path = Path(path)
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
    unknown = set(document) - {"seed", *STAGES}
    if unknown:
        raise PipelineError(f"{path}: unknown section(s) {brief(sorted(map(str, unknown)))}; "
                            f"expected seed and {list(STAGES)}")
    seed = document.get("seed", 42)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise PipelineError(f"{path}: seed must be an integer, got {brief(seed)}")
    config = {}
    for stage, notebook in STAGES.items():
        section = document.get(stage) or {}
        if not isinstance(section, dict):
            raise PipelineError(f"{path}: section {stage!r} must be a mapping of parameters")
        known = set(notebook_parameters(notebooks_dir() / notebook)) - set(INJECTED)
        values = {str(key).upper(): value for key, value in section.items()}
        wrong = sorted(key.lower() for key in set(values) - known)
        if wrong:
            raise PipelineError(f"{path}: section {stage!r}: unknown key(s) {brief(wrong)}; "
                                f"{notebook} takes {sorted(k.lower() for k in known)}")
        config[stage] = values | {"SEED": seed}
    return config


def check_inputs(config: dict[str, dict[str, object]], source: str) -> None:
    """Data files named by the config must exist before any training starts."""
    for stage, values in config.items():
        for key, value in values.items():
            if isinstance(value, str) and value.endswith((".json", ".db", ".csv")) and not Path(value).is_file():
                raise PipelineError(f"{source}: {stage}.{key.lower()}: data file {value} not found")


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


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
                 progress: bool = True) -> Path:
    from neo_ml.reporting import write_report

    config = load_config(config_path)
    check_inputs(config, str(config_path))
    run_name = run_name or f"{Path(config_path).stem}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    run_dir = paths.outputs_dir() / "runs" / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"run": run_name, "config": str(config_path), "parameters": config, "git_commit": git_commit(),
                "package_versions": package_versions(), "started_at": dt.datetime.now(dt.UTC).isoformat(),
                "seconds": {}}
    for stage in stages or list(STAGES):
        print(f"[{stage}] {STAGES[stage]}", file=sys.stderr, flush=True)
        manifest["seconds"][stage] = run_stage(stage, config[stage], run_dir, progress)
        write_json(run_dir / "manifest.json", manifest)
    manifest["data_checksums"] = collect_checksums(run_dir)
    write_json(run_dir / "manifest.json", manifest)
    write_report(run_dir, manifest)
    return run_dir


def collect_checksums(run_dir: Path) -> dict[str, str]:
    checksums = {}
    for path in sorted((run_dir / "metrics").glob("*.json")):
        checksums |= json.loads(path.read_text()).get("data_checksums", {})
    return checksums


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neo_ml.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="YAML file, e.g. configs/default.yaml")
    parser.add_argument("--run-name", default=None, help="folder under outputs/runs/ (default: config + time)")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=None)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    return run_command(lambda: {"run_dir": str(run_pipeline(args.config, args.run_name, args.stages,
                                                            not args.no_progress))}, args.debug)


if __name__ == "__main__":
    sys.exit(main())
