"""Where the project keeps things, so code and notebooks work from any directory.

The project root is the folder holding ``pyproject.toml`` above this package
(an editable install or a checkout). Every folder can be moved with an
environment variable, which is how tests and CI keep their files apart.
"""

from __future__ import annotations

import os
from pathlib import Path


def _find_project_root() -> Path:
    here = Path(__file__).resolve().parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    # Installed as a plain wheel: fall back to the working directory.
    return Path.cwd()


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


PROJECT_ROOT = _env_path("NEO_ML_ROOT", _find_project_root())


def data_dir() -> Path:
    """Downloaded corpora and the files derived from them (never committed)."""
    return _env_path("NEO_ML_DATA_DIR", PROJECT_ROOT / "data")


def models_dir() -> Path:
    """Trained checkpoints served by default."""
    return _env_path("NEO_ML_MODELS_DIR", PROJECT_ROOT / "models")


def outputs_dir() -> Path:
    """Pipeline runs, reports and benchmark results."""
    return _env_path("NEO_ML_OUTPUTS_DIR", PROJECT_ROOT / "outputs")


def default_ncf_checkpoint() -> Path:
    return models_dir() / "ncf_benchmark_v1.pt"


def classification_models_dir() -> Path:
    """Classifier checkpoint folders: benchmark_v1/, production_v1/, ..."""
    return models_dir() / "classification"


def run_dir(value: str | Path | None = None) -> Path:
    """A notebook's run folder: the one the pipeline passes, or ``outputs/runs/notebooks`` when run by hand."""
    folder = Path(value).expanduser().resolve() if value else outputs_dir() / "runs" / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
