"""``python -m neo_ml.train_classification`` as the README spells it; see ``neo_ml.commands.train_classification``."""

import sys

from neo_ml.commands.train_classification import main

if __name__ == "__main__":
    sys.exit(main())
