"""``python -m neo_ml.benchmark`` as the README spells it; the command lives in ``neo_ml.commands.benchmark``."""

import sys

from neo_ml.commands.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
