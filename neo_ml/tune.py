"""``python -m neo_ml.tune`` as the README spells it; the command lives in ``neo_ml.commands.tune``."""

import sys

from neo_ml.commands.tune import main

if __name__ == "__main__":
    sys.exit(main())
