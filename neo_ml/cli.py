"""What every command shares: one JSON line on success, one line of error and exit 1 on bad input."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable

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
