"""``python -m neo_ml.promote`` as the README spells it; the command lives in ``neo_ml.commands.promote``."""

import sys

from neo_ml.commands.promote import main

if __name__ == "__main__":
    sys.exit(main())
