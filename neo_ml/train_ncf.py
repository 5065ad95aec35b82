"""``python -m neo_ml.train_ncf`` as the README spells it; the command lives in ``neo_ml.commands.train_ncf``."""

import sys

from neo_ml.commands.train_ncf import main

if __name__ == "__main__":
    sys.exit(main())
