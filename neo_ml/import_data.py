"""``python -m neo_ml.import_data`` as the README spells it; the command lives in ``neo_ml.commands.import_data``."""

import sys

from neo_ml.commands.import_data import main

if __name__ == "__main__":
    sys.exit(main())
