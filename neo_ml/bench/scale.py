"""Scale benchmarks: NCF training up to MovieLens-20M size, and serving catalogues up to a million items.

    python -m neo_ml.benchmark scale [--sizes 100k 1M 20M] [--max-batches N] [--architecture A]
    python -m neo_ml.benchmark catalogue [--catalogues 10k 100k 1M] [--models DIR] [--architecture A]

``--architecture``: the default's (sasrec) unless told; neumf gives the
previous default, NeuMF + history.

Training: each size runs in a fresh process, so its peak resident memory is its own:
generate the interactions (``data.synthetic.create_scale_interactions``, the
users and items of the MovieLens release of that size), split them NCF-LOO,
then train for one epoch and score every user's validation item; dense and
sparse gradients (a sequence model: full softmax, then sparse with sampled
softmax). ``--max-batches`` ends the epoch early (default: 3,000 batches of
pairs, 300 of windows). Throughput is the training examples per second of
the optimisation loop: pairs (positives and negatives), or predicted positions.

Serving: for each catalogue size, 20,000 synthetic users with 1M
interactions over that many items train the model (sparse embedding
gradients, a few epochs), and ``NCFService`` serves the checkpoint exactly
(every item scored) and in two stages (``ncf.retrieval``: FAISS IVF or an
exact matrix product picks the candidates, the model scores them). Reported:
``recommend`` p50/p95 latency over known users, the recall of the exact top 10
in the two-stage top 10, and ``recommend_batch`` users per second.
"""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neo_ml.bench.timing import finish_report, latency_percentiles, time_calls
from neo_ml.data.splits import coded_leave_one_out_split
from neo_ml.data.synthetic import create_scale_interactions
from neo_ml.ncf.checkpoint import save_trained
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.service import NCFService
from neo_ml.ncf.train import train_ncf_model

# name -> (users, items, interactions) of the MovieLens release of that size
SIZES = {"100k": (943, 1682, 100_000), "1M": (6040, 3706, 1_000_209), "20M": (138_493, 26_744, 20_000_263)}


def peak_memory_gib() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


DEFAULT_BATCHES = {False: 3000, True: 300}  # by is_sequence_model: a batch of windows is 50 predictions each


def _config(architecture: str | None, **fields) -> NCFConfig:
    """The default config with ``fields``, of ``architecture`` when one is named."""
    return NCFConfig(**({"architecture": architecture} if architecture else {}), **fields)


def train_at_scale(size: str, max_batches: int | None = None, sparse: bool = False, seed: int = 0,
                   architecture: str | None = None) -> dict:
    """Generate, split and train one epoch at ``size``; seconds, throughput and peak memory.

    ``sparse``: sparse embedding gradients with SparseAdam (``NCFConfig.sparse``).
    """
    config = _config(architecture, epochs=1, seed=seed, sparse=sparse)
    users, items, interactions = SIZES[size]
    started = time.perf_counter()
    coded = create_scale_interactions(users, items, interactions, seed=seed)
    generated = time.perf_counter()
    split = coded_leave_one_out_split(coded)
    rows = len(coded)
    del coded
    split_done = time.perf_counter()
    result = train_ncf_model(split, config, progress=False, max_batches=max_batches)
    epoch = result.history[0]
    return {"size": size, "architecture": config.architecture, "sparse": sparse,
            "softmax_negatives": config.negatives_for(split.num_items) if config.is_sequence_model else None,
            "examples_per_positive": 1 if config.is_sequence_model else 1 + config.num_negatives,
            "users": split.num_users, "items": split.num_items, "interactions": rows,
            "train_positives": len(split.train), "max_batches": max_batches,
            "generate_seconds": generated - started, "split_seconds": split_done - generated,
            "train_pairs": epoch["train_pairs"], "fit_seconds": epoch["fit_seconds"],
            "pairs_per_second": epoch["train_pairs"] / epoch["fit_seconds"],
            "validation_seconds": epoch["seconds"] - epoch["fit_seconds"],
            "val_hr@10": epoch.get("val_hr@10"), "peak_memory_gib": peak_memory_gib()}


def run_in_fresh_process(*arguments: str) -> dict:
    """``python -m neo_ml.bench.scale ARGUMENTS`` in a new process (its own peak memory); its JSON line."""
    done = subprocess.run([sys.executable, "-m", "neo_ml.bench.scale", *arguments], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"scale run {arguments} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gradients(row: dict) -> str:
    kind = "sparse" if row["sparse"] else "dense"
    if row["examples_per_positive"] != 1:  # pairs: no softmax
        return kind
    return kind + (f", {row['softmax_negatives']} sampled" if row["softmax_negatives"] else ", full softmax")


def format_report(report: dict) -> str:
    config = report["config"]
    described = NCFConfig(**config)
    if described.is_sequence_model:
        what = (f"{config['batch_size']} windows of {described.items_read} items per batch, every position of "
                f"the latest {config['history_length']} predicted")
    else:
        what = f"batch {config['batch_size']} pairs, {config['num_negatives']} negatives per positive"
    lines = [f"NCF training at scale ({config['architecture']}, {what}, {report['torch_threads']} torch threads)", "",
             "| size | users | items | interactions | gradients | examples trained | examples/s | epoch (est.) min | "
             "validation s | generate + split s | peak GiB |", "| --- " * 11 + "|"]
    for row in report["runs"]:
        epoch_minutes = row["examples_per_positive"] * row["train_positives"] / row["pairs_per_second"] / 60
        lines.append(f"| {row['size']} | {row['users']:,} | {row['items']:,} | {row['interactions']:,} | "
                     f"{_gradients(row)} | {row['train_pairs']:,} | "
                     f"{row['pairs_per_second']:,.0f} | {epoch_minutes:.1f} | {row['validation_seconds']:.1f} | "
                     f"{row['generate_seconds'] + row['split_seconds']:.0f} | {row['peak_memory_gib']:.2f} |")
    return "\n".join(lines)


def run_scale_benchmark(sizes=tuple(SIZES), max_batches: int | None = None, output: Path | None = None,
                        architecture: str | None = None) -> dict:
    """``max_batches``: None for ``DEFAULT_BATCHES``, 0 for whole epochs."""
    started = time.perf_counter()
    config = _config(architecture)
    batches = DEFAULT_BATCHES[config.is_sequence_model] if max_batches is None else max_batches
    runs = [run_in_fresh_process("train", size, str(batches), gradients, config.architecture)
            for size in sizes for gradients in ("dense", "sparse")]
    report = {"suite": "scale", "runs": runs, "torch_threads": torch.get_num_threads(), "config": config.to_dict()}
    return finish_report(report, started, output, format_report)


CATALOGUES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
SERVING_USERS, SERVING_INTERACTIONS = 20_000, 1_000_000


def catalogue_model_stem(folder: Path, config: NCFConfig, items: int) -> Path:
    """Where the catalogue model of ``config`` over ``items`` items is kept (less its suffix)."""
    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
    return folder / f"{config.architecture}_{items}_{digest}"


def train_catalogue_model(items: int, folder: Path, epochs: int = 3, seed: int = 0,
                          architecture: str | None = None) -> tuple[Path, dict]:
    """A checkpoint of ``architecture`` (default: the default's) over ``items`` synthetic items; its path and
    training figures. A checkpoint already in ``folder`` (with its ``.json`` figures) of the same config is
    served as it is: the file name holds a digest of the config, so a changed default trains anew.
    """
    config = _config(architecture, epochs=epochs, patience=epochs, sparse=True, seed=seed)
    stem = catalogue_model_stem(folder, config, items)
    path, figures = stem.with_suffix(".pt"), stem.with_suffix(".json")
    if path.exists() and figures.exists():
        return path, json.loads(figures.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    coded = create_scale_interactions(SERVING_USERS, items, SERVING_INTERACTIONS, seed=seed)
    split = coded_leave_one_out_split(coded, hold_out_test=False)
    result = train_ncf_model(split, config, progress=False)
    save_trained(path, result, split, result.validation_metrics, f"synthetic:{seed}", "create_scale_interactions")
    training = {"items": split.num_items, "architecture": config.architecture, "train_seconds": result.train_seconds,
                "val_hr@10": result.validation_metrics.get("val_hr@10")}
    figures.write_text(json.dumps(training))
    return path, training


def serve_catalogue(path: Path, users: list[str], top_k: int = 10) -> dict:
    """Latency, recall of the exact top ``top_k`` and batch throughput of each retrieval mode."""
    exact = NCFService(model_path=path, retrieval="exact")
    truth = [set(i for i, _ in ranked) for ranked in exact.recommend_batch(users, top_k)]
    figures = {}
    for mode in ("exact", "matmul", "ivf"):
        service = exact if mode == "exact" else NCFService(model_path=path, retrieval=mode)
        loaded = time.perf_counter()
        service.recommend(users[0], top_k)  # loads the checkpoint and builds the index
        load_seconds = time.perf_counter() - loaded
        latency = latency_percentiles(time_calls(service.recommend, [(u, top_k) for u in users], warmup=10))
        started = time.perf_counter()
        batch = service.recommend_batch(users, top_k)
        batch_seconds = time.perf_counter() - started
        recall = np.mean([len(set(i for i, _ in ranked) & want) / len(want)
                          for ranked, want in zip(batch, truth, strict=True)])
        figures[mode] = {**latency, "recall@10_of_exact": float(recall), "load_seconds": load_seconds,
                         "index_seconds": getattr(service.search.index, "build_seconds", 0.0),
                         "batch_users_per_second": len(users) / batch_seconds,
                         "candidates": service.candidates, "nprobe": service.nprobe}
    return figures


def catalogue_at_scale(name: str, models: Path | None = None, queries: int = 300, seed: int = 0,
                       architecture: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path, training = train_catalogue_model(CATALOGUES[name], models or Path(folder), seed=seed,
                                               architecture=architecture)
        users = [str(u) for u in np.random.default_rng(seed).choice(SERVING_USERS, queries, replace=False)]
        return {"catalogue": name, **training, "queries": queries, "torch_threads": torch.get_num_threads(),
                "modes": serve_catalogue(path, users), "peak_memory_gib": peak_memory_gib()}


def format_catalogue_report(report: dict) -> str:
    first = report["runs"][0]
    lines = [f"Recommend top 10 over large catalogues ({first['architecture']}, "
             f"{first['queries']} known users, "
             f"{first['torch_threads']} torch threads, {first['modes']['ivf']['candidates']} candidates, "
             f"IVF nprobe {first['modes']['ivf']['nprobe']})", "",
             "| catalogue | mode | p50 ms | p95 ms | recall of exact top 10 | batch users/s | index s |",
             "| --- " * 7 + "|"]
    for run in report["runs"]:
        for mode, row in run["modes"].items():
            lines.append(f"| {run['catalogue']} | {mode} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | "
                         f"{row['recall@10_of_exact']:.3f} | {row['batch_users_per_second']:,.0f} | "
                         f"{row['index_seconds']:.1f} |")
    return "\n".join(lines)


def run_catalogue_benchmark(names=tuple(CATALOGUES), output: Path | None = None, models: Path | None = None,
                            architecture: str | None = None) -> dict:
    """Each catalogue in a fresh process; ``models``: a folder keeping the trained checkpoints for later runs."""
    started, runs = time.perf_counter(), []
    architecture = _config(architecture).architecture
    for name in names:
        runs.append(run_in_fresh_process("catalogue", name, architecture, *([str(models)] if models else [])))
        print(format_catalogue_report({"runs": runs[-1:]}).split("\n", 4)[-1], file=sys.stderr, flush=True)
    return finish_report({"suite": "catalogue", "runs": runs}, started, output, format_catalogue_report)


if __name__ == "__main__":
    kind, name, *rest = sys.argv[1:]
    if kind == "train":
        batches, gradients, architecture = rest
        print(json.dumps(train_at_scale(name, int(batches) or None, sparse=gradients == "sparse",
                                        architecture=architecture)))
    else:
        architecture, *models = rest
        print(json.dumps(catalogue_at_scale(name, Path(models[0]) if models else None, architecture=architecture)))
