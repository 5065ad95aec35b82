"""``python -m neo_ml.gpu_check`` as the README spells it; the command lives in ``neo_ml.bench.gpu_check``."""

import sys

from neo_ml.bench.gpu_check import main

if __name__ == "__main__":
    sys.exit(main())
