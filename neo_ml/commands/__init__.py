"""The commands: argument parsing and exit codes only; the work is in the library.

    train_ncf, train_classification, import_data, pipeline, benchmark

What they share: flags made from config dataclasses (``build_parser``), and
one JSON line on success, one line of error and exit 1 on bad input
(``run_command``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import fields

from transformers import HfArgumentParser

from neo_ml.errors import NeoMLError


def run_command(body: Callable[[], dict], debug: bool = False) -> int:
    """Run ``body``; print its result as one JSON line (exit 0), or the error as one line (exit 1).

    A ``None`` result prints nothing (a torchrun rank other than 0).

    ``debug`` shows DEBUG logs and lets errors raise with their traceback.
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        result = body()
    except (NeoMLError, OSError) as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result))
    return 0


def build_parser(prog: str, doc: str, *configs: type) -> HfArgumentParser:
    """A parser with one flag per field of each config dataclass (``--field-name``; help from the
    field's metadata), as HF's ``run_glue.py`` builds its flags."""
    return HfArgumentParser(configs, prog=prog, description=doc.split("\n")[0])


def config_from(args, config_class: type):
    """The config dataclass from the parsed flags (its ``__post_init__`` checks every value)."""
    return config_class(**{f.name: getattr(args, f.name) for f in fields(config_class)})
