"""``python -m neo_ml.pipeline`` as the README spells it; the command lives in ``neo_ml.commands.pipeline``."""

import sys

from neo_ml.commands.pipeline import main

if __name__ == "__main__":
    sys.exit(main())
