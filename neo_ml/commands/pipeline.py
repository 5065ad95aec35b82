"""Run the workbook's notebooks in order with papermill, into one run folder (``workbook.pipeline``).

    python -m neo_ml.pipeline --config configs/default.yaml --run-name NAME
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neo_ml.commands import run_command
from neo_ml.workbook.pipeline import STAGES, run_pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neo_ml.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="YAML file, e.g. configs/default.yaml")
    parser.add_argument("--run-name", default=None, help="folder under outputs/runs/ (default: config + time)")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=None)
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: the YAML's tracking_uri, $MLFLOW_TRACKING_URI, "
                             "else sqlite:///outputs/mlflow.db)")
    parser.add_argument("--no-tracking", action="store_true", help="log nothing to MLflow")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    tracking = False if args.no_tracking else None  # None: the YAML's tracking key decides
    return run_command(lambda: {"run_dir": str(run_pipeline(args.config, args.run_name, args.stages,
                                                            not args.no_progress, args.tracking_uri,
                                                            tracking))}, args.debug)


if __name__ == "__main__":
    sys.exit(main())
