"""Scale benchmarks: NCF training on synthetic data of MovieLens sizes, up to ML-20M.

    python -m neo_ml.benchmark scale [--sizes 100k 1M 20M] [--max-batches 3000]

Each size runs in a fresh process, so its peak resident memory is its own:
generate the interactions (``data.synthetic.create_scale_interactions``, the
users and items of the MovieLens release of that size), split them NCF-LOO,
then train the default NeuMF + history for one epoch, negatives streamed
batch by batch, and score every user's validation item. ``--max-batches``
ends the epoch early; throughput is the training pairs (positives and
negatives) per second of the optimisation loop.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

from neo_ml.data.splits import coded_leave_one_out_split
from neo_ml.data.synthetic import create_scale_interactions
from neo_ml.ncf.train import NCFConfig, train_ncf_model

# name -> (users, items, interactions) of the MovieLens release of that size
SIZES = {"100k": (943, 1682, 100_000), "1M": (6040, 3706, 1_000_209), "20M": (138_493, 26_744, 20_000_263)}


def peak_memory_gib() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def train_at_scale(size: str, max_batches: int | None = None, seed: int = 0) -> dict:
    """Generate, split and train one epoch at ``size``; seconds, throughput and peak memory."""
    users, items, interactions = SIZES[size]
    started = time.perf_counter()
    coded = create_scale_interactions(users, items, interactions, seed=seed)
    generated = time.perf_counter()
    split = coded_leave_one_out_split(coded)
    rows = len(coded)
    del coded
    split_done = time.perf_counter()
    result = train_ncf_model(split, NCFConfig(epochs=1, seed=seed), progress=False, max_batches=max_batches)
    epoch = result.history[0]
    return {"size": size, "users": split.num_users, "items": split.num_items, "interactions": rows,
            "train_positives": len(split.train), "max_batches": max_batches,
            "generate_seconds": generated - started, "split_seconds": split_done - generated,
            "train_pairs": epoch["train_pairs"], "fit_seconds": epoch["fit_seconds"],
            "pairs_per_second": epoch["train_pairs"] / epoch["fit_seconds"],
            "validation_seconds": epoch["seconds"] - epoch["fit_seconds"],
            "val_hr@10": epoch.get("val_hr@10"), "peak_memory_gib": peak_memory_gib()}


def run_in_fresh_process(size: str, max_batches: int | None) -> dict:
    command = [sys.executable, "-m", "neo_ml.scale", size] + ([str(max_batches)] if max_batches else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"scale run {size} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def format_report(report: dict) -> str:
    lines = ["NCF training at scale (default NeuMF + history, batch 1024 pairs, 4 negatives per positive, "
             f"{report['torch_threads']} torch threads)", "",
             "| size | users | items | interactions | pairs trained | pairs/s | epoch (est.) min | "
             "validation s | split s | peak GiB |", "| --- " * 10 + "|"]
    for row in report["runs"]:
        epoch_minutes = 5 * row["train_positives"] / row["pairs_per_second"] / 60
        lines.append(f"| {row['size']} | {row['users']:,} | {row['items']:,} | {row['interactions']:,} | "
                     f"{row['train_pairs']:,} | {row['pairs_per_second']:,.0f} | {epoch_minutes:.1f} | "
                     f"{row['validation_seconds']:.1f} | {row['split_seconds']:.1f} | "
                     f"{row['peak_memory_gib']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(train_at_scale(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)))
