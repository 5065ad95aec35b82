"""What every benchmark suite shares: timing calls, their percentiles, summaries over seeds, and writing
the report.

Kept apart from the suites so that each suite imports it and none imports another.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import numpy as np

from neo_ml import paths
from neo_ml.files import package_versions


def latency_percentiles(samples: list[float]) -> dict:
    ms = np.array(samples) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "calls": len(ms)}


def time_calls(call, arguments: list, warmup: int = 20) -> list[float]:
    """Seconds per ``call(*args)`` for each tuple in ``arguments``, after ``warmup`` untimed calls."""
    return time_interleaved({"call": (call, arguments)}, warmup)["call"]


def time_interleaved(calls: dict[str, tuple], warmup: int = 20) -> dict[str, list[float]]:
    """Seconds per call, by name, for ``{name: (function, [args, ...])}``: the i-th call of each name in
    turn, so that a busy moment on the machine falls on every name alike, not on whichever ran then."""
    for function, arguments in calls.values():
        for args in arguments[:warmup]:
            function(*args)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for turn in range(max(len(arguments) for _, arguments in calls.values())):
        for name, (function, arguments) in calls.items():
            if turn < len(arguments):
                started = time.perf_counter()
                function(*arguments[turn])
                samples[name].append(time.perf_counter() - started)
    return samples


def mean_and_sd(runs: list[dict], keys) -> dict:
    """Per key, the mean over ``runs`` and, as ``<key>_sd``, their sample sd (0 for a single run)."""
    out = {}
    for key in keys:
        values = np.array([run[key] for run in runs], dtype=float)
        out[key] = float(values.mean())
        out[f"{key}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def mean_sd_cell(row: dict, key: str) -> str:
    """A table cell "mean +- sd" from a ``mean_and_sd`` row (sd 0 where the row has none)."""
    return f"{row[key]:.3f} +- {row.get(key + '_sd', 0):.3f}"


def figures(metrics: dict, keys) -> str:
    """A progress line's "key value" pairs."""
    return "  ".join(f"{key} {metrics[key]:.4f}" for key in keys)


def finish_report(report: dict, started: float, output: Path | None, format_report) -> dict:
    """Add provenance, write the JSON (``outputs/benchmarks/<suite>-<time>.json`` by default), print the tables."""
    report |= {"package_versions": package_versions(), "cpu_count": os.cpu_count(),
               "seconds": time.perf_counter() - started,
               "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    name = f"{report['suite']}-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    output = output or paths.outputs_dir() / "benchmarks" / name
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(format_report(report))
    print(f"\nwritten: {output}")
    return report
