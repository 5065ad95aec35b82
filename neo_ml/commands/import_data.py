"""Import interactions into the backend's tables (SQLite by default), to train or serve from.

    python -m neo_ml.import_data --data ml-100k [--database sqlite:///data/neo_alexandria.db] [--replace]
    python -m neo_ml.import_data --data interactions.json --database postgresql+psycopg://...

MovieLens ratings become interactions of type ``rating`` with strength
rating / 5, its movies resources with title and genres. A file's ``resources``
section is upserted (a known resource takes the file's title and description).
One transaction: a failed import leaves the database as it was.
Prints what it wrote as one JSON line.
"""

from __future__ import annotations

import argparse
import sys

from neo_ml.commands import run_command
from neo_ml.data import db as database
from neo_ml.data.corpora import load_movielens_interactions, movielens_resources
from neo_ml.data.interactions import read_interactions_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neo_ml.import_data", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="ml-100k | FILE.json")
    parser.add_argument("--database", default=None, help="SQLAlchemy URL or SQLite path "
                        f"(default {database.default_database_url()})")
    parser.add_argument("--replace", action="store_true", help="delete existing interactions first")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)

    def body() -> dict:
        if args.data == "ml-100k":
            frame, resources = load_movielens_interactions(), movielens_resources()
        else:
            dataset = read_interactions_json(args.data)
            frame, resources = dataset.interactions, dataset.resources
        engine = database.connect(args.database)
        written = database.import_interactions(engine, frame, replace=args.replace, resources_frame=resources)
        return {"database": database.database_name(engine), "interactions": written, "resources": len(resources)}

    return run_command(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
