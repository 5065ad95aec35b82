"""Keep the committed notebooks clean and their stored outputs fresh for nbval.

    python -m neo_ml.workbook refresh [notebooks/02_train_ncf.ipynb ...]   (commands/workbook.py)
    python -m neo_ml.workbook clean   [...]

``refresh`` executes each notebook in place with its default parameters (in
order, from the notebooks folder, so 04 finds what 02 and 03 wrote) and then
cleans it; ``clean`` only strips what should not be in git: execution
timings, widget state, papermill's run metadata, any kernelspec but
``python3``, and images (every plot is a PNG in the run folder; nbval reads
only text). After a full ``refresh``, the README's plots (``DOC_PLOTS``) are
copied from the notebooks' run folder into ``docs/img/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from neo_ml import paths

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
DOC_PLOTS = ("ncf_baselines.png", "ncf_training_curves.png", "classifier_baselines.png")  # shown in the README


def notebook_paths(given: list[str] | None = None) -> list[Path]:
    return [Path(p) for p in given] if given else sorted((paths.PROJECT_ROOT / "notebooks").glob("[0-9]*.ipynb"))


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for cell in notebook.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        cell.pop("id", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            for kind in [kind for kind in data if kind.startswith("image/")]:
                del data[kind]
    notebook.nbformat, notebook.nbformat_minor = 4, 4
    return notebook


def refresh(path: Path, timeout: int = 1200) -> None:
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(clean(notebook), path)


def copy_doc_plots() -> None:
    """The README's plots, from the run folder the notebooks write to when run from their folder."""
    source = paths.outputs_dir() / "runs" / "notebooks" / "plots"
    target = paths.PROJECT_ROOT / "docs" / "img"
    target.mkdir(parents=True, exist_ok=True)
    for name in DOC_PLOTS:
        shutil.copyfile(source / name, target / name)
