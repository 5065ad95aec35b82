"""``make ui``: the MLflow UI on the embedded store (``outputs/mlflow.db``) or ``--tracking-uri``.

    python -m neo_ml.tracking_ui --port 5000
"""

import argparse
import os
import sys

from neo_ml.tracking import ui_command

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m neo_ml.tracking_ui", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to let a team reach it")
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    command = ui_command(args.port, args.tracking_uri, args.host)
    print(f"MLflow UI on http://{args.host}:{args.port} ({command[command.index('--backend-store-uri') + 1]})",
          file=sys.stderr)
    os.execv(command[0], command)
