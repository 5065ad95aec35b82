"""The NCF suite: quality on the published protocols and serving latency (``python -m neo_ml.benchmark ncf``).

NCF-LOO on MovieLens-100k (He et al. 2017; split seed 2017, 99 saved
negatives per user): test HR@10 / NDCG@10, sampled and full ranking, of the
epoch chosen on the validation item, mean +- sd over seeds, for the default
NCF configuration (SASRec), the previous default (NeuMF + history), the plain
NeuMF, the seed's MLP and popularity. Then the Recommenders 75/25 protocol,
the new-user protocol for the default (``bench.new_users``), the new-resource protocol
(``bench.new_items``), and the p50/p95 latency of ``NCFService``
(``predict_batch`` of 10 items; ``recommend`` top 10 with seen items read from
a SQLite database). Results also go to ``outputs/benchmarks/`` as JSON.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neo_ml import paths
from neo_ml.bench.new_items import benchmark_new_items, format_new_items
from neo_ml.bench.new_users import benchmark_new_users, format_new_users
from neo_ml.bench.timing import figures, finish_report, latency_percentiles, mean_and_sd, mean_sd_cell, time_interleaved
from neo_ml.data import db as database
from neo_ml.data.corpora import ML100K_CHECKSUM, load_movielens_100k, load_movielens_interactions, movielens_item_texts
from neo_ml.data.splits import LeaveOneOutSplit, leave_one_out_split, random_holdout_split, split_75_25
from neo_ml.ncf.baselines import PREVIOUS_DEFAULT, SEED_MLP, PopularityModel
from neo_ml.ncf.checkpoint import save_trained
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.evaluate import LOO_KEYS, evaluate_model, top_k_metrics
from neo_ml.ncf.service import NCFService
from neo_ml.ncf.text_path import without_text_path
from neo_ml.ncf.train import train_ncf_model
from neo_ml.sentence_encoder import text_vectors

SPLIT_SEED = 2017
DEFAULT_VARIANT = "SASRec + text (default)"
NO_TEXT_VARIANT = "SASRec, text path off"  # the default's models read without it: the same training
# name -> changes to the default NCFConfig
NCF_VARIANTS = {
    DEFAULT_VARIANT: {},
    "NeuMF + history (the previous default)": PREVIOUS_DEFAULT,
    "NeuMF, no history": {**SEED_MLP, "architecture": "neumf"},
    "MLP [128,64,32] (seed), no history": SEED_MLP,
}


def movielens_loo_split(ratings: pd.DataFrame) -> LeaveOneOutSplit:
    """The NCF-LOO split with its negatives, saved once so every model ranks the same candidates."""
    # v2: negatives drawn by rejection sampling (``sample_unseen_items``); a v1 file holds other draws.
    path = paths.data_dir() / "ml-100k" / f"ncf_loo_v2_seed{SPLIT_SEED}_{ML100K_CHECKSUM[:12]}.npz"
    if path.is_file():
        return LeaveOneOutSplit.load(path)
    split = leave_one_out_split(ratings, seed=SPLIT_SEED)
    split.save(path)
    return split


def movielens_text_vectors(item_ids) -> np.ndarray:
    """The sentence embedding of each MovieLens-100k movie's text, in ``item_ids`` order."""
    texts = movielens_item_texts()
    return text_vectors([texts.get(item, "") for item in item_ids])


def benchmark_loo(split: LeaveOneOutSplit, seeds, variants, item_text: np.ndarray | None = None) -> tuple[dict, dict]:
    """Test metrics per variant (mean/sd over seeds); also returns the trained models, by variant and seed.
    ``item_text``: the items' sentence embeddings, for the variants that read them; the default's models
    are also scored with their text path off (``NO_TEXT_VARIANT``)."""
    results, kept, text_off = {}, {}, []
    pop = evaluate_model(PopularityModel(split.train, split.num_items), split, "test")
    results["Popularity"] = {**pop, "train_seconds": 0.0, "seconds_to_best": 0.0, "runs": [pop]}
    for name, changes in variants.items():
        runs = []
        for seed in seeds:
            trained = train_ncf_model(split, NCFConfig(**changes, seed=seed), progress=False, item_text=item_text)
            test = evaluate_model(trained.model, split, "test")
            runs.append({**test, "seed": seed, "best_epoch": trained.best_epoch,
                         "train_seconds": trained.train_seconds, "seconds_to_best": trained.seconds_to_best_epoch})
            print(f"  {name:38s} seed {seed}: {figures(test, LOO_KEYS)}  epoch {trained.best_epoch}  "
                  f"{trained.train_seconds:.1f}s", file=sys.stderr)
            kept.setdefault(name, {})[seed] = trained
            if name == DEFAULT_VARIANT and trained.text_seconds:
                off = evaluate_model(without_text_path(trained.model), split, "test")
                text_off.append({**off, "seed": seed, "best_epoch": trained.best_epoch,
                                 "train_seconds": trained.train_seconds,
                                 "seconds_to_best": trained.seconds_to_best_epoch - trained.text_seconds})
        results[name] = {**mean_and_sd(runs, (*LOO_KEYS, "train_seconds", "seconds_to_best")), "runs": runs}
        if name == DEFAULT_VARIANT and text_off:
            results[NO_TEXT_VARIANT] = {**mean_and_sd(text_off, (*LOO_KEYS, "train_seconds", "seconds_to_best")),
                                        "runs": text_off}
    return results, kept


# 75/25 test items are a random quarter of each user's interactions, not the latest ones: epochs are
# chosen on one random training interaction per user, by full-ranking NDCG@10 like the protocol.
VARIANTS_75_25 = {
    DEFAULT_VARIANT: {"select_metric": "ndcg@10_full"},
    "NeuMF + history (the previous default)": {**PREVIOUS_DEFAULT, "select_metric": "ndcg@10_full"},
    "NeuMF, no history": {**PREVIOUS_DEFAULT, "history_length": 0, "select_metric": "ndcg@10_full"},
}


def benchmark_75_25(ratings: pd.DataFrame, seeds, variants=None, k: int = 10) -> dict:
    """Recommenders' protocol: random 75/25 per user (seed 42), top-k over items not in train."""
    train, test = split_75_25(ratings, seed=42)
    split = random_holdout_split(train, seed=SPLIT_SEED)
    relevant_by_user = test.groupby("user_id")["item_id"].apply(set)
    users = np.array([u for u in split.users.ids if u in relevant_by_user.index])
    user_idx = split.users.encode(users)
    relevant = [relevant_by_user[u] for u in users]
    seen = split.train_plus_validation()
    rows = np.full(split.num_users, -1)
    rows[user_idx] = np.arange(len(user_idx))

    def top_k(model) -> list[list[str]]:
        history = split.history_for("test", model.history_length)[user_idx] if model.history_length else None
        scores = model.score_all_items(torch.as_tensor(user_idx),
                                       None if history is None else torch.as_tensor(history)).numpy()
        mask = rows[seen[:, 0]] >= 0
        scores[rows[seen[mask, 0]], seen[mask, 1]] = -np.inf  # nothing from train is recommended
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [[split.items.ids[i] for i in row] for row in best]

    out = {"Popularity": top_k_metrics(top_k(PopularityModel(seen, split.num_items)), relevant, k)}
    item_text = movielens_text_vectors(split.items.ids)
    for name, changes in (variants or VARIANTS_75_25).items():
        runs = []
        for seed in seeds:
            trained = train_ncf_model(split, NCFConfig(**changes, seed=seed), progress=False, item_text=item_text)
            runs.append({**top_k_metrics(top_k(trained.model), relevant, k), "best_epoch": trained.best_epoch,
                         "train_seconds": trained.train_seconds})
            print(f"  75/25 {name:32s} seed {seed}: ndcg@10 {runs[-1]['ndcg@10']:.4f}  "
                  f"epoch {trained.best_epoch}", file=sys.stderr)
        out[name] = {**mean_and_sd(runs, [key for key in runs[0] if key != "runs"]), "runs": runs}
    return out


def time_ncf_service(service: NCFService, calls: int, seed: int = 0, warmup: int = 100,
                     newcomers: list[str] | None = None) -> dict[str, list[float]]:
    """Seconds per call of ``predict_batch`` (10 items) and ``recommend`` (top 10), on users and items
    drawn at random from those the checkpoint knows; with ``newcomers`` (users the checkpoint does not
    know, with interactions in the service's database), ``recommend`` for them too; the calls interleaved."""
    rng = np.random.default_rng(seed)
    users = rng.choice(np.array(service.known_user_ids()), calls)
    item_sets = rng.choice(np.array(service.known_item_ids()), (calls, 10))
    timed = {"predict_batch": (service.predict_batch, [(u, items.tolist()) for u, items in
                                                       zip(users, item_sets, strict=True)]),
             "recommend": (service.recommend, [(u, 10) for u in users])}
    if newcomers:
        timed["recommend_newcomer"] = (service.recommend, [(u, 10) for u in rng.choice(np.array(newcomers), calls)])
    return time_interleaved(timed, warmup)


NEWCOMERS = 200  # users copied into the latency database under ids the checkpoint does not know
NEW_RESOURCE_CALLS = ("new_resource_first_predict", "new_resource_later_predict", "recommend_top10_with_new_resources")
NEW_RESOURCES = 200  # movies copied into the latency database under ids the checkpoint does not know


def time_new_resources(service: NCFService, engine, texts: dict[str, str], seed: int = 0) -> dict[str, list[float]]:
    """Seconds of a new resource's first ``predict_batch`` (imported into the service's database just
    before: looked up, embedded and scored), of a later one, and of ``recommend`` once they are served."""
    rng = np.random.default_rng(seed)
    users = rng.choice(np.array(service.known_user_ids()), len(texts))
    first, later, recommend = [], [], []
    for user, (item, text) in zip(users, texts.items(), strict=True):
        database.import_resources(engine, pd.DataFrame([(item, text, "")], columns=["item_id", "title", "description"]))
        started = time.perf_counter()
        service.predict_batch(user, [item])
        first.append(time.perf_counter() - started)
    for user, item in zip(users, texts, strict=True):
        started = time.perf_counter()
        service.predict_batch(user, [item])
        later.append(time.perf_counter() - started)
        started = time.perf_counter()
        service.recommend(user, 10)
        recommend.append(time.perf_counter() - started)
    return {"new_resource_first_predict": first, "new_resource_later_predict": later,
            "recommend_top10_with_new_resources": recommend}


def benchmark_latency(trained, split: LeaveOneOutSplit, calls: int = 2000) -> dict:
    """p50/p95 of NCFService calls on a checkpoint and a SQLite database of all ratings, plus the ratings
    of ``NEWCOMERS`` users again under new ids (``newcomer-<id>``), unknown to the checkpoint."""
    frame = load_movielens_interactions()
    copied = np.random.default_rng(0).choice(np.array(split.users.ids), NEWCOMERS, replace=False)
    newcomers = frame[frame["user_id"].isin(set(copied))].assign(user_id=lambda f: "newcomer-" + f["user_id"])
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "ncf.pt"
        save_trained(checkpoint, trained, split, {}, ML100K_CHECKSUM, "ml-100k")
        engine = database.connect(f"sqlite:///{Path(tmp) / 'ml100k.db'}")
        database.import_interactions(engine, pd.concat([frame, newcomers], ignore_index=True))
        service = NCFService(db=engine, model_path=checkpoint)
        samples = time_ncf_service(service, calls, newcomers=[f"newcomer-{user}" for user in copied])
        if service.new_resources is not None:  # the same movies' texts under new ids
            texts = movielens_item_texts()
            chosen = np.random.default_rng(1).choice(np.array(sorted(texts)), NEW_RESOURCES, replace=False)
            samples |= time_new_resources(service, engine, {f"new-{item}": texts[item] for item in chosen})
        engine.dispose()
    return {"predict_batch_10": latency_percentiles(samples["predict_batch"]),
            "recommend_top10_sqlite": latency_percentiles(samples["recommend"]),
            "recommend_top10_sqlite_newcomer": latency_percentiles(samples["recommend_newcomer"]),
            **{name: latency_percentiles(samples[name]) for name in NEW_RESOURCE_CALLS if name in samples},
            "torch_threads": torch.get_num_threads()}


def format_report(report: dict) -> str:
    lines = ["NCF-LOO, MovieLens-100k (split seed 2017, 99 saved negatives; test item, epoch chosen on "
             f"validation; mean +- sd over seeds {report['seeds']})", "",
             "| model | HR@10 sampled | NDCG@10 sampled | HR@10 full | NDCG@10 full | training s (to the chosen) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, row in report["loo"].items():
        cells = [mean_sd_cell(row, k) for k in LOO_KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['train_seconds']:.1f} "
                     f"({row['seconds_to_best']:.1f}) |")
    if "new_users" in report:
        lines += ["", format_new_users(report["new_users"])]
    if "new_items" in report:
        lines += ["", format_new_items(report["new_items"])]
    if "75_25" in report:
        lines += ["", "Recommenders 75/25 (seed 42), top 10 over items not in train; epoch chosen on one random "
                  "training item per user (full-ranking NDCG@10)",
                  "", "| model | NDCG@10 | Precision@10 | Recall@10 | MAP@10 |", "| --- | --- | --- | --- | --- |"]
        for name, row in report["75_25"].items():
            cells = [f"{row[k]:.3f}" + (f" +- {row[k + '_sd']:.3f}" if k + "_sd" in row else "")
                     for k in ("ndcg@10", "precision@10", "recall@10", "map@10")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "latency" in report:
        lat = report["latency"]
        lines += ["", f"NCFService latency ({lat['predict_batch_10']['calls']} calls each, "
                      f"{lat['torch_threads']} torch threads)", "", "| call | p50 ms | p95 ms |", "| --- | --- | --- |"]
        for name in ("predict_batch_10", "recommend_top10_sqlite", "recommend_top10_sqlite_newcomer",
                     *(name for name in NEW_RESOURCE_CALLS if name in lat)):
            lines.append(f"| {name} | {lat[name]['p50_ms']:.3f} | {lat[name]['p95_ms']:.3f} |")
    return "\n".join(lines)


def run_ncf_benchmark(seeds=(42, 43, 44), quick: bool = False, output: Path | None = None) -> dict:
    ratings = load_movielens_100k()
    split = movielens_loo_split(ratings)
    variants = {k: v for k, v in NCF_VARIANTS.items() if not quick or not v}
    started = time.perf_counter()
    item_text = movielens_text_vectors(split.items.ids)
    loo, trained = benchmark_loo(split, seeds, variants, item_text)
    report = {"suite": "ncf", "seeds": list(seeds), "data": "ml-100k", "data_checksum": ML100K_CHECKSUM,
              "default_config": NCFConfig().to_dict(), "variants": variants, "loo": loo}
    if not quick:
        report["75_25"] = benchmark_75_25(ratings, seeds)
    report["new_users"] = {"model": DEFAULT_VARIANT, **benchmark_new_users(
        split, {seed: NCFConfig(seed=seed) for seed in seeds}, trained[DEFAULT_VARIANT], item_text=item_text)}
    report["new_items"] = benchmark_new_items(split, item_text, {
        seed: NCFConfig(seed=seed) for seed in (seeds[:1] if quick else seeds)}, DEFAULT_VARIANT, NO_TEXT_VARIANT)
    default = trained[DEFAULT_VARIANT][seeds[0]]
    report["latency"] = benchmark_latency(default, split, calls=500 if quick else 2000)
    return finish_report(report, started, output, format_report)
