"""Point an alias of a registered model at one of its versions.

    python -m neo_ml.promote neo-ml-ncf 3 --alias production
    python -m neo_ml.promote neo-ml-classifier 2 --alias benchmark --tracking-uri http://mlflow.internal:5000

Services then load ``models:/neo-ml-ncf@production``. The store is ``--tracking-uri``, else
``MLFLOW_TRACKING_URI``, else the embedded ``sqlite:///outputs/mlflow.db``.
"""

from __future__ import annotations

import argparse
import sys

from neo_ml.commands import run_command
from neo_ml.tracking import CLASSIFIER_MODEL, NCF_MODEL, promote


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neo_ml.promote", description=__doc__.split("\n")[0])
    parser.add_argument("model", help=f"registered model: {NCF_MODEL} or {CLASSIFIER_MODEL}")
    parser.add_argument("version", help="its version number")
    parser.add_argument("--alias", default="production", help="alias to move (default: production)")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    return run_command(lambda: promote(args.model, args.version, args.alias, args.tracking_uri), args.debug)


if __name__ == "__main__":
    sys.exit(main())
