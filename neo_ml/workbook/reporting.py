"""Plots and the run report of the notebook workbook.

Every plot function draws one figure with labelled axes (units in brackets)
and, when a run folder is given, saves it as ``plots/<name>.png``. Notebooks
call them and display the figure; ``write_report`` gathers every stage's
``metrics/<stage>.json`` and every PNG into ``report.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

INLINE = matplotlib.get_backend().lower() in ("module://matplotlib_inline.backend_inline", "inline")
if not INLINE:
    matplotlib.use("Agg")  # scripts and tests have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neo_ml.files import write_json  # noqa: E402


def save(fig, run_dir: str | Path | None, name: str):
    """Save ``fig`` as ``run_dir/plots/name.png`` (when a run folder is given) and return it."""
    fig.tight_layout()
    if run_dir is not None:
        folder = Path(run_dir) / "plots"
        folder.mkdir(parents=True, exist_ok=True)
        fig.savefig(folder / f"{name}.png", dpi=110)
    if not INLINE:
        plt.close(fig)  # outside a notebook nothing displays it; keep memory flat
    return fig


def write_metrics(run_dir: str | Path, stage: str, metrics: dict) -> Path:
    return write_json(Path(run_dir) / "metrics" / f"{stage}.json", metrics)


# -- data ------------------------------------------------------------------------------------
def plot_long_tail(item_counts: Sequence[int], run_dir=None, name: str = "interaction_long_tail"):
    counts = np.sort(np.asarray(item_counts))[::-1]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(counts) + 1), counts, label="interactions per item")
    share = counts.cumsum() / counts.sum()
    head = int(np.searchsorted(share, 0.5)) + 1
    ax.axvline(head, color="grey", linestyle="--", label=f"top {head} items hold 50 % of interactions")
    ax.set(xscale="log", yscale="log", xlabel="item popularity rank", ylabel="interactions [count]",
           title="Long tail of item popularity")
    ax.legend()
    return save(fig, run_dir, name)


def plot_histogram(values: Sequence[float], xlabel: str, title: str, run_dir=None, name: str = "histogram",
                   bins: int = 50, log_x: bool = False, label: str | None = None):
    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    edges = np.geomspace(max(values.min(), 1), values.max(), bins) if log_x else bins
    ax.hist(values, bins=edges, label=label or f"n = {len(values):,}, median {np.median(values):.0f}")
    ax.set(xlabel=xlabel, ylabel="count", title=title, xscale="log" if log_x else "linear")
    ax.legend()
    return save(fig, run_dir, name)


def plot_bars(values: dict[str, float], ylabel: str, title: str, run_dir=None, name: str = "bars",
              reference: float | None = None, reference_label: str | None = None, xlabel: str = "class"):
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(values)), 3.8))
    ax.bar(list(values), list(values.values()), label=ylabel)
    if reference is not None:
        ax.axhline(reference, color="red", linestyle="--", label=reference_label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.tick_params(axis="x", rotation=60 if len(values) > 6 else 0)
    ax.legend()
    return save(fig, run_dir, name)


def plot_grouped_bars(rows: dict[str, dict[str, float]], ylabel: str, title: str, run_dir=None,
                      name: str = "grouped_bars", xlabel: str = "metric"):
    """One group of bars per metric (or corpus), one colour per row (model): ``{model: {metric: value}}``."""
    import pandas as pd

    frame = pd.DataFrame(rows)  # metrics as the index, models as the columns
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(frame) * max(1, len(rows) / 2)), 3.8))
    frame.plot.bar(ax=ax, rot=0)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.3f", fontsize=7)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(0, min(1.05, frame.to_numpy().max() * 1.15)))
    ax.legend(title="model", fontsize=8)
    return save(fig, run_dir, name)


# -- training --------------------------------------------------------------------------------
def plot_training_curves(history: list[dict], loss_keys: Sequence[str], metric_keys: Sequence[str], title: str,
                         run_dir=None, name: str = "training_curves"):
    """Losses (left) and validation metrics (right) per epoch, from a list of per-epoch records."""
    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in loss_keys:
        left.plot(epochs, [row[key] for row in history], marker="o", label=key)
    for key in metric_keys:
        right.plot(epochs, [row[key] for row in history], marker="o", label=key)
    left.set(xlabel="epoch", ylabel="loss [binary cross-entropy]", title=f"{title}: loss")
    right.set(xlabel="epoch", ylabel="metric value [0-1]", title=f"{title}: validation")
    left.legend()
    right.legend()
    return save(fig, run_dir, name)


def plot_confusion(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str], run_dir=None,
                   name: str = "confusion_matrix"):
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(truth, predicted, labels=list(labels), normalize="true")
    fig, ax = plt.subplots(figsize=(0.4 * len(labels) + 3, 0.4 * len(labels) + 2.5))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of the true class's documents")
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted (top-1)", ylabel="true", title="Confusion matrix (rows sum to 1)")
    return save(fig, run_dir, name)


def plot_reliability(table: list[dict], run_dir=None, name: str = "reliability_diagram"):
    """Accuracy against mean confidence per bin (``calibration.reliability_table`` rows)."""
    rows = [row for row in table if row["count"]]
    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    ax.plot([r["mean_confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o",
            label="top-1 predictions per confidence bin")
    for r in rows:
        ax.annotate(f"n={r['count']}", (r["mean_confidence"], r["accuracy"]), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="mean confidence [0-1]", ylabel="share correct [0-1]",
           title="Reliability diagram")
    ax.legend(loc="upper left")
    return save(fig, run_dir, name)


def plot_latency(samples_ms: dict[str, Sequence[float]], budgets_ms: dict[str, float], run_dir=None,
                 name: str = "latency"):
    fig, axes = plt.subplots(1, len(samples_ms), figsize=(5 * len(samples_ms), 3.5), squeeze=False)
    for ax, (call, values) in zip(axes[0], samples_ms.items(), strict=True):
        values = np.asarray(values)
        ax.hist(values, bins=40, label=f"{len(values)} calls")
        for q, style in ((50, ":"), (95, "--")):
            ax.axvline(np.percentile(values, q), color="black", linestyle=style,
                       label=f"p{q} {np.percentile(values, q):.2f} ms")
        if call in budgets_ms:
            ax.axvline(budgets_ms[call], color="red", label=f"p95 budget {budgets_ms[call]:g} ms")
        ax.set(xlabel="latency [ms]", ylabel="calls", title=call)
        ax.legend(fontsize=8)
    return save(fig, run_dir, name)


def plot_search(study, objective: str, run_dir=None, name: str = "search_history"):
    """Optuna's optimisation history of ``study``: each finished trial's ``objective`` and the best so far."""
    import warnings

    from optuna.visualization.matplotlib import plot_optimization_history

    with warnings.catch_warnings():  # optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore")
        ax = plot_optimization_history(study, target_name=objective)
    ax.figure.set_size_inches(7, 3.5)
    ax.set(ylabel=f"{objective} [0-1]")
    return save(ax.figure, run_dir, name)


# -- report ----------------------------------------------------------------------------------
def _markdown_value(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_report(run_dir: str | Path, manifest: dict) -> Path:
    """``report.md``: timings, each stage's scalar metrics and checks, then every plot."""
    run_dir = Path(run_dir)
    lines = [f"# Run {manifest['run']}", "", f"Config `{manifest['config']}`, commit `{manifest['git_commit']}`.",
             "", "| stage | seconds |", "| --- | --- |"]
    lines += [f"| {stage} | {seconds:.0f} |" for stage, seconds in manifest["seconds"].items()]
    for path in sorted((run_dir / "metrics").glob("*.json")):
        metrics = json.loads(path.read_text())
        lines += ["", f"## {path.stem}", ""]
        scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float | str) and k != "data_checksums"}
        if scalars:
            lines += ["| metric | value |", "| --- | --- |"]
            lines += [f"| {k} | {_markdown_value(v)} |" for k, v in scalars.items()]
        for table_name, rows in metrics.get("tables", {}).items():
            if rows:
                columns = list(rows[0])
                lines += ["", f"**{table_name}**", "", "| " + " | ".join(columns) + " |",
                          "| " + " | ".join("---" for _ in columns) + " |"]
                lines += ["| " + " | ".join(_markdown_value(row[c]) for c in columns) + " |" for row in rows]
    plots = sorted((run_dir / "plots").glob("*.png"))
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"### {p.stem.replace('_', ' ')}\n\n![{p.stem}](plots/{p.name})\n" for p in plots]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def check_thresholds(checks: list[tuple[str, float, str, float]]) -> list[dict]:
    """Rows of (check, value, rule, passed) for (name, value, ">=" or "<=", limit) tuples."""
    rows = []
    for name, value, op, limit in checks:
        if op not in (">=", "<="):
            raise ValueError(f"{name}: rule must be '>=' or '<=', got {op!r}")
        passed = value is not None and (value >= limit if op == ">=" else value <= limit)
        rows.append({"check": name, "value": value, "rule": f"{op} {limit:g}", "passed": bool(passed)})
    return rows
