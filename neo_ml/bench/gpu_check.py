"""Check the CUDA paths on a machine that has a GPU, and print their speed beside the CPU's.

    python -m neo_ml.gpu_check [--epochs 3] [--docs 512]

1. NCF training: the default model (SASRec) on MovieLens-100k (NCF-LOO) for
   ``--epochs`` epochs on CUDA, then on the CPU: training examples (predicted
   positions) per second and the validation HR@10 of each (they should agree
   within noise).
2. NCF serving: ``recommend`` over a 1M-item catalogue, exact scoring of every
   item, on CUDA and on the CPU: p50/p95 ms.
3. Classifier: all-MiniLM-L6-v2 embeddings of ``--docs`` 20 Newsgroups test
   documents on CUDA and on the CPU: documents per second and the lowest
   cosine between the two.

The project never needs a GPU; without one this prints why and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neo_ml.bench.timing import latency_percentiles, time_calls
from neo_ml.data.corpora import load_movielens_100k, load_text_corpus
from neo_ml.data.ids import IdMap
from neo_ml.data.splits import leave_one_out_split
from neo_ml.ncf.checkpoint import save_ncf_checkpoint
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.model import build_model
from neo_ml.ncf.service import NCFService
from neo_ml.ncf.train import train_ncf_model
from neo_ml.sentence_encoder import embed, load_encoder


def check_training(epochs: int) -> dict:
    split = leave_one_out_split(load_movielens_100k())
    figures = {}
    for device in ("cuda", "cpu"):
        result = train_ncf_model(split, NCFConfig(epochs=epochs, patience=epochs, device=device), progress=False)
        fit = sum(row["fit_seconds"] for row in result.history)
        pairs = sum(row["train_pairs"] for row in result.history)
        figures[device] = {"pairs_per_second": pairs / fit, "val_hr@10": result.validation_metrics["val_hr@10"]}
    return figures


def check_serving(items: int = 1_000_000, users: int = 1000, queries: int = 50) -> dict:
    model = build_model("neumf", users, items, history_length=5)
    pairs = np.stack([np.repeat(np.arange(users), 5), np.random.default_rng(0).integers(0, items, 5 * users)], 1)
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalogue.pt"
        save_ncf_checkpoint(path, model, NCFConfig(architecture="neumf").to_dict(),
                            IdMap(tuple(map(str, range(users)))), IdMap(tuple(map(str, range(items)))), pairs, {}, [],
                            "random", "gpu_check")
        for device in ("cuda", "cpu"):
            service = NCFService(model_path=path, retrieval="exact", device=device)
            calls = [(str(u), 10) for u in range(queries)]
            figures[device] = latency_percentiles(time_calls(service.recommend, calls, warmup=5))
    return figures


def check_classifier(docs: int) -> dict:
    texts = [text for text, _ in load_text_corpus("20ng")[1][:docs]]
    tokenizer, model = load_encoder()
    figures, vectors = {}, {}
    for device in ("cuda", "cpu"):
        model.to(device)
        embed(texts[:32], tokenizer, model)  # warm-up
        started = time.perf_counter()
        vectors[device] = embed(texts, tokenizer, model)
        figures[device] = {"docs_per_second": len(texts) / (time.perf_counter() - started)}
    a, b = vectors["cuda"], vectors["cpu"]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    figures["lowest_cosine_cuda_vs_cpu"] = float(cosine.min())
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m neo_ml.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--docs", type=int, default=512)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"no CUDA device visible to torch {torch.__version__}: nothing to check", file=sys.stderr)
        return 2
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "ncf_training": check_training(args.epochs), "ncf_serving_1M_items": check_serving(),
              "classifier_embedding": check_classifier(args.docs)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
