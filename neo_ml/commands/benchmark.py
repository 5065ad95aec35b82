"""Benchmark suites that print figures (each in ``neo_ml.bench``); results also go to ``outputs/benchmarks/``.

    python -m neo_ml.benchmark ncf [--seeds 42 43 44] [--quick]                           (bench/ncf.py)
    python -m neo_ml.benchmark classifier [--corpora 20ng r8 r52 20ng-dewey] [--quick]   (bench/classifier.py)
    python -m neo_ml.benchmark classifier-inference --checkpoint DIR   torch vs its int8 backends on a 20NG checkpoint
    python -m neo_ml.benchmark scale [--sizes 100k 1M 20M] [--max-batches N]              (bench/scale.py)
    python -m neo_ml.benchmark catalogue [--catalogues 10k 100k 1M] [--models DIR]         (bench/scale.py)
        scale and catalogue: [--architecture neumf] for the previous default (default: sasrec)
    python -m neo_ml.benchmark worst-case [--sizes 262144 524288 1048576] [--json OUT]   (bench/worst_case.py)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worst-case"]:  # its own flags (sizes in characters), in neo_ml.bench.worst_case
        from neo_ml.bench.worst_case import main as run_worst_case

        return run_worst_case(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m neo_ml.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("suite", choices=["ncf", "classifier", "classifier-inference", "scale", "catalogue",
                                          "worst-case"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44], help="ncf: training seeds")
    parser.add_argument("--corpora", nargs="+", default=None, help="classifier: corpora to run (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="ncf: default model, one seed, no 75/25; classifier: R8 and small data only")
    parser.add_argument("--sizes", nargs="+", default=None, help="scale: 100k 1M 20M")
    parser.add_argument("--max-batches", type=int, default=None,
                        help="scale: batches trained per size (0: all; default 3000 of pairs, 300 of windows)")
    parser.add_argument("--architecture", default=None, help="scale, catalogue: the model (default: the default's)")
    parser.add_argument("--catalogues", nargs="+", default=None, help="catalogue: 10k 100k 1M")
    parser.add_argument("--models", type=Path, default=None,
                        help="catalogue: folder keeping the trained checkpoints (reused when present)")
    parser.add_argument("--output", type=Path, default=None, help="JSON results file")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="classifier-inference: a classifier checkpoint trained on 20ng")
    args = parser.parse_args(argv)
    if args.suite == "classifier-inference":
        from neo_ml.bench.classifier import run_inference_benchmark

        if args.checkpoint is None:
            parser.error("classifier-inference needs --checkpoint DIR (a checkpoint trained with --data 20ng)")
        run_inference_benchmark(args.checkpoint, output=args.output)
        return 0
    if args.suite in ("scale", "catalogue"):
        from neo_ml.bench import scale

        if args.suite == "scale":
            scale.run_scale_benchmark(args.sizes or list(scale.SIZES), args.max_batches, args.output,
                                      args.architecture)
        else:
            scale.run_catalogue_benchmark(args.catalogues or list(scale.CATALOGUES), args.output, args.models,
                                          args.architecture)
        return 0
    if args.suite == "classifier":
        from neo_ml.bench.classifier import run_classifier_benchmark
        from neo_ml.classification.data import CORPORA

        run_classifier_benchmark(args.corpora or CORPORA, quick=args.quick, output=args.output)
        return 0
    from neo_ml.bench.ncf import run_ncf_benchmark

    seeds = args.seeds[:1] if args.quick else args.seeds
    run_ncf_benchmark(seeds, quick=args.quick, output=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
