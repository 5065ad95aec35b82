"""Keep the committed notebooks clean and their stored outputs fresh for nbval.

    python -m neo_ml.workbook refresh [notebooks/02_train_ncf.ipynb ...]
    python -m neo_ml.workbook clean   [...]

``refresh`` executes each notebook in place with its default parameters (in
order, from the notebooks folder, so 04 finds what 02 and 03 wrote) and then
cleans it; ``clean`` only strips what should not be in git: execution
timings, widget state, papermill's run metadata and any kernelspec but
``python3``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from neo_ml import paths

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def notebook_paths(given: list[str] | None = None) -> list[Path]:
    return [Path(p) for p in given] if given else sorted((paths.PROJECT_ROOT / "notebooks").glob("[0-9]*.ipynb"))


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for cell in notebook.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        cell.pop("id", None)
    notebook.nbformat, notebook.nbformat_minor = 4, 4
    return notebook


def refresh(path: Path, timeout: int = 1200) -> None:
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(clean(notebook), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neo_ml.workbook", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["refresh", "clean"])
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args(argv)
    for path in notebook_paths(args.notebooks):
        print(f"{args.action}: {path}", file=sys.stderr, flush=True)
        if args.action == "refresh":
            refresh(path)
        else:
            nbformat.write(clean(nbformat.read(path, as_version=4)), path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
