"""The classifier benchmark: every corpus of shared/BENCHMARKS.md, the baseline beside it, small data, latency.

    python -m neo_ml.benchmark classifier [--corpora 20ng r8 r52 20ng-dewey] [--quick]

Per corpus: train on the train file with the default configuration (training
wall seconds include encoding), report on the test file, and fit the TF-IDF +
LinearSVC baseline on the same split. Then small data: about 100 real labelled
samples (20NG-Dewey: 7 codes, a third with two; 20NG: 10 groups, single label),
three random subsets each, written to a classification JSON file, trained by
the default ``train_classification`` command and scored through the service
on 1,000 held-out test documents.
Then the p50/p95 latency of ``MLClassificationService.predict`` on the
median-length 20NG test document, in a fresh serving process, and each
inference backend (torch fp32, ONNX Runtime int8, Inductor static int8, OpenVINO int8) on the same 20NG
checkpoint, also in a fresh process: ``predict_batch`` documents per second
and test accuracy. That comparison alone, on a trained 20NG checkpoint:

    python -m neo_ml.benchmark classifier-inference --checkpoint models/classification/benchmark_v1
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neo_ml.bench.timing import finish_report, latency_percentiles, time_calls
from neo_ml.classification.baseline import evaluate_baseline
from neo_ml.classification.checkpoint import OPENVINO_XML, add_openvino_int8, save_classifier, verify_checkpoint
from neo_ml.classification.data import CORPORA, load_text_data, median_length_text
from neo_ml.classification.evaluate import evaluate
from neo_ml.classification.metrics import classification_report
from neo_ml.classification.model import INFERENCE_BACKENDS, ClassifierConfig, TaxonomyClassifier
from neo_ml.classification.run import train_classifier
from neo_ml.classification.service import MLClassificationService
from neo_ml.data.text import LabeledText, samples_to_document

PUBLISHED = {"20ng": "BERT 0.853, BertGCN 0.893", "r8": "BERT 0.978, BertGCN 0.981",
             "r52": "BERT 0.964, BertGCN 0.966", "20ng-dewey": "(no published figure)"}
SMALL_SAMPLES, SMALL_TEST, SMALL_GROUPS, SMALL_SEEDS = 100, 1000, 10, (0, 1, 2)
THROUGHPUT_DOCUMENTS, THROUGHPUT_REPEATS = 500, 3


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def benchmark_corpus(name: str, config: ClassifierConfig, checkpoint: Path | None = None) -> dict:
    """Classifier and baseline on one corpus's train/test files; optionally keeps the checkpoint."""
    train, test, checksum = load_text_data(name)
    model = TaxonomyClassifier(config)
    validation = model.fit(train)
    test_report = evaluate(model, test)
    if checkpoint is not None:
        save_classifier(model, checkpoint, {"validation": validation, "test": test_report}, checksum)
    baseline = evaluate_baseline(train, test)
    _log(f"  {name}: accuracy {test_report['accuracy']:.4f} (baseline {baseline['accuracy']:.4f})  "
         f"micro-F1 {test_report['micro_f1']:.4f}  {validation['train_seconds']:.0f}s")
    return {"classifier": {**test_report, "train_seconds": validation["train_seconds"],
                           "fusion_weight": validation["fusion_weight"]},
            "validation": {k: v for k, v in validation.items() if k != "tuning_epochs"},
            "baseline": baseline, "train_documents": len(train), "data_checksum": checksum}


def small_subset(corpus: str, seed: int = 0) -> tuple[list[LabeledText], list[LabeledText]]:
    """About 100 training samples and 1,000 held-out test documents of a real corpus.

    ``20ng-dewey``: a random 100. ``20ng``: 10 samples from each of 10 groups (every other one).
    """
    train, test = load_text_data(corpus)[:2]
    rng = random.Random(seed)
    if corpus == "20ng":
        groups = sorted({labels[0] for _, labels in train})[::2][:SMALL_GROUPS]
        per_group = SMALL_SAMPLES // len(groups)
        train = [s for g in groups for s in rng.sample([s for s in train if s[1][0] == g], per_group)]
        test = [s for s in test if s[1][0] in groups]
    else:
        train = rng.sample(train, SMALL_SAMPLES)
    return train, rng.sample(test, min(SMALL_TEST, len(test)))


def score_matrix(results, labels: list[str]) -> np.ndarray:
    """Documents x labels confidences (columns in ``labels`` order) from results ranking every label."""
    return np.array([[{p.taxonomy_code: p.confidence for p in r.predictions}[code] for code in labels]
                     for r in results])


def benchmark_small_data(corpus: str, folder: Path, seed: int) -> dict:
    """The default training command on a small JSON file, scored through the service on held-out documents."""
    train, test = small_subset(corpus, seed)
    data = folder / f"{corpus}-small-{seed}.json"
    data.write_text(json.dumps(samples_to_document(train)))
    checkpoint = folder / f"{corpus}-small-{seed}"
    train_classifier(str(data), ClassifierConfig(), checkpoint, progress=False)
    service = MLClassificationService(model_path=checkpoint)
    texts, truth = [t for t, _ in test], [labels for _, labels in test]
    results = service.predict_batch(texts, top_k=len(service.labels))
    report = classification_report(truth, [r.codes for r in results], score_matrix(results, service.labels),
                                   service.labels)
    baseline = evaluate_baseline(train, test)
    _log(f"  small {corpus} subset {seed}: top-1 {report['top1_precision']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
         f"(baseline {baseline['top1_precision']:.4f} / {baseline['macro_f1']:.4f})")
    return {"subset_seed": seed, "classifier": report, "baseline": baseline, "train_samples": len(train),
            "two_label_samples": sum(len(labels) == 2 for _, labels in train),
            "classes": len({code for _, codes in train for code in codes})}


def benchmark_latency(checkpoint: Path, calls: int = 300) -> dict:
    """p50/p95 of ``predict`` on the median-length 20NG test document, after 20 warm-up calls."""
    import torch

    _, test, _ = load_text_data("20ng")
    document = median_length_text(test)
    service = MLClassificationService(model_path=checkpoint)
    samples = time_calls(service.predict, [(document,)] * calls)
    return {"predict": latency_percentiles(samples), "document_words": len(document.split()),
            "torch_threads": torch.get_num_threads()}


def in_fresh_process(function, *args):
    """``function(*args)`` in a new interpreter, as a serving process would be: one that has not just
    trained four corpora (in the training process p95 latency read 51.5 ms against 36-39 ms fresh)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def benchmark_backend(checkpoint: Path, inference: str, test: list[LabeledText]) -> tuple[dict, np.ndarray]:
    """One inference backend through the service: seconds to a first prediction (the first load of
    ``onnx-int8`` exports the encoder and adds it to the checkpoint when it has none), test metrics,
    and ``predict_batch`` documents per second, the median of repeats on an evenly spaced test subset."""
    texts, truth = [t for t, _ in test], [labels for _, labels in test]
    loads = []
    for _ in range(2):  # first load, then a load of what the first one left; each up to a first prediction
        service, started = MLClassificationService(model_path=checkpoint, inference=inference), time.perf_counter()
        service.predict(texts[0])
        loads.append(time.perf_counter() - started)
    labels = service.labels
    started = time.perf_counter()
    results = service.predict_batch(texts, top_k=len(labels))
    test_seconds = time.perf_counter() - started
    scores = score_matrix(results, labels)
    report = classification_report(truth, [r.codes for r in results], scores, labels)
    subset = texts[::max(1, len(texts) // THROUGHPUT_DOCUMENTS)][:THROUGHPUT_DOCUMENTS]
    seconds = []
    for _ in range(THROUGHPUT_REPEATS):
        started = time.perf_counter()
        service.predict_batch(subset)
        seconds.append(time.perf_counter() - started)
    _log(f"  {inference}: accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  "
         f"{len(subset) / np.median(seconds):.1f} documents/s  first load {loads[0]:.1f}s")
    return {**report, "first_load_seconds": loads[0], "load_seconds": loads[1], "test_seconds": test_seconds,
            "test_documents_per_second": len(texts) / test_seconds, "documents_per_second":
            len(subset) / float(np.median(seconds)), "timed_documents": len(subset), "repeats": seconds}, scores


def benchmark_inference(checkpoint: Path) -> dict:
    """Every inference backend on the same 20NG checkpoint and test set, and how far their outputs differ."""
    import torch

    train, test, _ = load_text_data("20ng")
    rows, scores = {}, {}
    started = time.perf_counter()
    if OPENVINO_XML not in verify_checkpoint(checkpoint)["files"]:  # trained for another backend
        add_openvino_int8(checkpoint, [text for text, _ in train])
    openvino_export_seconds = time.perf_counter() - started
    for inference in INFERENCE_BACKENDS:
        rows[inference], scores[inference] = benchmark_backend(checkpoint, inference, test)
    reference = scores[INFERENCE_BACKENDS[0]]
    for inference in INFERENCE_BACKENDS[1:]:
        rows[inference] |= {
            "speedup": rows[inference]["documents_per_second"] / rows[INFERENCE_BACKENDS[0]]["documents_per_second"],
            "accuracy_points_lost": 100 * (rows[INFERENCE_BACKENDS[0]]["accuracy"] - rows[inference]["accuracy"]),
            "max_probability_difference": float(np.abs(scores[inference] - reference).max()),
            "top1_agreement": float((scores[inference].argmax(1) == reference.argmax(1)).mean())}
    return {"backends": rows, "torch_threads": torch.get_num_threads(), "checkpoint": str(checkpoint),
            "openvino_export_seconds": openvino_export_seconds}


def format_inference(inference: dict) -> list[str]:
    lines = [f"MLClassificationService.predict_batch, 20NG test, one checkpoint per backend "
             f"({inference['torch_threads']} threads; documents/s: median of {THROUGHPUT_REPEATS} runs on "
             f"{THROUGHPUT_DOCUMENTS} test documents; load s: to a first prediction, the first load exporting the "
             "encoder when the checkpoint has no export yet; the OpenVINO IR, made from the training texts when "
             f"the checkpoint has none, took {inference.get('openvino_export_seconds', 0):.0f} s before)", "",
             "| inference | documents/s | speed-up | accuracy | points lost | macro-F1 | top-1 agreement | "
             "max probability difference | first load s | load s |", "| --- | --- | --- | --- | --- | --- | --- "
             "| --- | --- | --- |"]
    for name, row in inference["backends"].items():
        extra = [f"{row['speedup']:.2f}x", f"{row['accuracy_points_lost']:.2f}"] if "speedup" in row else ["", ""]
        agreement = [f"{row['top1_agreement']:.4f}", f"{row['max_probability_difference']:.4f}"] \
            if "speedup" in row else ["", ""]
        lines.append(f"| {name} | {row['documents_per_second']:.1f} | {extra[0]} | {row['accuracy']:.4f} | "
                     f"{extra[1]} | {row['macro_f1']:.4f} | {agreement[0]} | {agreement[1]} | "
                     f"{row['first_load_seconds']:.1f} | {row['load_seconds']:.1f} |")
    return lines


def run_inference_benchmark(checkpoint: Path, output: Path | None = None) -> dict:
    """``benchmark_inference`` alone, on a trained 20NG checkpoint."""
    started = time.perf_counter()
    report = {"suite": "classifier-inference", "inference": benchmark_inference(Path(checkpoint))}
    return finish_report(report, started, output, lambda r: "\n".join(format_inference(r["inference"])))


def format_report(report: dict) -> str:
    lines = ["Taxonomy classifier: train file -> test file (choices on held-out training data only; "
             f"{report['config']['max_length']} tokens, epochs {report['config']['epochs']})", "",
             "| corpus | metric | classifier | TF-IDF + LinearSVC | training s (classifier / baseline) | published |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, row in report["corpora"].items():
        keys = ("micro_f1", "macro_f1", "top1_precision") if name == "20ng-dewey" else ("accuracy", "macro_f1")
        for n, key in enumerate(keys):
            seconds = f"{row['classifier']['train_seconds']:.0f} / {row['baseline']['train_seconds']:.0f}"
            lines.append(f"| {name if n == 0 else ''} | {key} | {row['classifier'][key]:.4f} | "
                         f"{row['baseline'][key]:.4f} | {seconds if n == 0 else ''} | "
                         f"{PUBLISHED[name] if n == 0 and key == 'accuracy' else ''} |")
    if report.get("small_data"):
        lines += ["", f"Small data: {SMALL_SAMPLES} real training samples, default train_classification on a JSON "
                  f"file, {SMALL_TEST} held-out test documents", "",
                  "| corpus | subset seed | classes | two-label samples | top-1 | macro-F1 | baseline top-1 | "
                  "baseline macro-F1 |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, rows in report["small_data"].items():
            for row in rows:
                c, b = row["classifier"], row["baseline"]
                lines.append(f"| {name} | {row['subset_seed']} | {row['classes']} | {row['two_label_samples']} | "
                             f"{c['top1_precision']:.4f} | {c['macro_f1']:.4f} | {b['top1_precision']:.4f} | "
                             f"{b['macro_f1']:.4f} |")
            lines.append(f"| {name} | mean | | | " + " | ".join(
                f"{np.mean([r[side][key] for r in rows]):.4f}" for side in ("classifier", "baseline")
                for key in ("top1_precision", "macro_f1")) + " |")
    for name, row in report["corpora"].items():
        lines += ["", f"Reliability of the top-1 prediction, {name} test "
                  f"({row['classifier']['confident_share']:.1%} of documents at confidence >= 0.9, "
                  f"{row['classifier']['confident_accuracy']:.4f} of them correct)", "",
                  "| confidence | predictions | mean confidence | correct |", "| --- | --- | --- | --- |"]
        lines += [f"| {r['bin']} | {r['count']} | {r['mean_confidence']:.3f} | {r['accuracy']:.3f} |"
                  for r in row["classifier"]["reliability"] if r["count"]]
    if "latency" in report:
        lat = report["latency"]
        lines += ["", f"MLClassificationService.predict on the median-length 20NG test document "
                      f"({lat['document_words']} words, {lat['predict']['calls']} calls, {lat['torch_threads']} "
                      f"torch threads): p50 {lat['predict']['p50_ms']:.1f} ms, p95 {lat['predict']['p95_ms']:.1f} ms"]
    if "inference" in report:
        lines += ["", *format_inference(report["inference"])]
    return "\n".join(lines)


def run_classifier_benchmark(corpora=CORPORA, quick: bool = False, output: Path | None = None,
                             config: ClassifierConfig | None = None) -> dict:
    """``quick``: R8 only, small data on the Dewey view, no latency (about 3 minutes)."""
    config = config or ClassifierConfig()
    corpora = ["r8"] if quick else list(corpora)
    started = time.perf_counter()
    report = {"suite": "classifier", "config": config.to_dict(), "corpora": {}, "small_data": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in corpora:
            keep = Path(tmp) / "20ng" if name == "20ng" else None
            report["corpora"][name] = benchmark_corpus(name, config, keep)
        for corpus in ["20ng-dewey"] if quick else ["20ng-dewey", "20ng"]:
            report["small_data"][corpus] = [benchmark_small_data(corpus, Path(tmp), seed)
                                            for seed in (SMALL_SEEDS[:1] if quick else SMALL_SEEDS)]
        if "20ng" in corpora:
            report["latency"] = in_fresh_process(benchmark_latency, Path(tmp) / "20ng")
            report["inference"] = in_fresh_process(benchmark_inference, Path(tmp) / "20ng")
    return finish_report(report, started, output, format_report)
