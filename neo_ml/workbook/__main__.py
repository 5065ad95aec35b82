"""The workbook's upkeep command: keep the committed notebooks clean and their stored outputs fresh.

    python -m neo_ml.workbook refresh [notebooks/02_train_ncf.ipynb ...]
    python -m neo_ml.workbook clean   [...]
"""

from __future__ import annotations

import argparse
import sys

import nbformat

from neo_ml.workbook.notebooks import clean, copy_doc_plots, notebook_paths, refresh


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
    if args.action == "refresh" and not args.notebooks:
        copy_doc_plots()
    return 0


if __name__ == "__main__":
    sys.exit(main())
