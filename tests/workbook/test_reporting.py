"""The workbook's plots are readable (labelled axes, legend) and the run report gathers them."""

import json

import numpy as np
import pytest

from neo_ml.workbook import reporting

PLOTS = {
    "interaction_long_tail": lambda run: reporting.plot_long_tail([50, 20, 5, 1, 1], run),
    "histogram": lambda run: reporting.plot_histogram([3, 10, 40, 200], "length [words]", "Lengths", run,
                                                      log_x=True),
    "bars": lambda run: reporting.plot_bars({"000": 0.5, "500": 0.9}, "test F1", "Per class", run,
                                            reference=0.7, reference_label="macro-F1"),
    "grouped_bars": lambda run: reporting.plot_grouped_bars(
        {"model": {"hr@10": 0.7, "ndcg@10": 0.4}, "popularity": {"hr@10": 0.4, "ndcg@10": 0.2}},
        "test score", "Against baselines", run),
    "training_curves": lambda run: reporting.plot_training_curves(
        [{"epoch": 1, "loss": 0.5, "f1": 0.6}, {"epoch": 2, "loss": 0.4, "f1": 0.7}], ["loss"], ["f1"], "M", run),
    "reliability_diagram": lambda run: reporting.plot_reliability(
        [{"count": 10, "mean_confidence": 0.55, "accuracy": 0.5}, {"count": 0, "mean_confidence": 0.0,
                                                                    "accuracy": 0.0},
         {"count": 30, "mean_confidence": 0.95, "accuracy": 0.93}], run),
    "latency": lambda run: reporting.plot_latency({"predict": np.linspace(1, 3, 50)}, {"predict": 2.5}, run),
}


@pytest.mark.parametrize("name", PLOTS)
def test_every_plot_is_saved_with_labelled_axes_and_a_legend(tmp_path, name):
    figure = PLOTS[name](tmp_path)
    assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 1000
    for ax in figure.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), name
        assert ax.get_legend() is not None and ax.get_legend().get_texts(), name


def test_the_confusion_matrix_has_labelled_axes_and_a_colour_scale(tmp_path):
    figure = reporting.plot_confusion(["a", "b", "b"], ["a", "a", "b"], ["a", "b"], tmp_path)
    matrix_axes, colour_bar = figure.axes
    assert matrix_axes.get_xlabel() == "predicted (top-1)" and matrix_axes.get_ylabel() == "true"
    assert "share" in colour_bar.get_ylabel()
    assert (tmp_path / "plots" / "confusion_matrix.png").is_file()


def test_the_report_gathers_timings_metrics_tables_and_every_plot(tmp_path):
    for make in PLOTS.values():
        make(tmp_path)
    reporting.write_metrics(tmp_path, "ncf", {"test_hr@10": 0.6987, "data_checksums": {"x": "abc"},
                                              "tables": {"ncf": [{"model": "NeuMF", "hr@10": 0.7}]}})
    manifest = {"run": "r1", "config": "configs/x.yaml", "git_commit": "abc123", "seconds": {"ncf": 12.4}}
    report = reporting.write_report(tmp_path, manifest).read_text()
    assert "| ncf | 12 |" in report and "| test_hr@10 | 0.6987 |" in report
    assert "| model | hr@10 |" in report and "| NeuMF | 0.7000 |" in report
    assert "data_checksums" not in report
    assert all(f"](plots/{name}.png)" in report for name in PLOTS)
    assert json.loads((tmp_path / "metrics" / "ncf.json").read_text())["test_hr@10"] == 0.6987


def test_thresholds_pass_and_fail_and_refuse_an_unknown_rule():
    rows = reporting.check_thresholds([("hr", 0.7, ">=", 0.6), ("p95", 3.0, "<=", 1.0), ("missing", None, ">=", 0)])
    assert [row["passed"] for row in rows] == [True, False, False]
    assert rows[1]["rule"] == "<= 1"
    with pytest.raises(ValueError, match="rule must be"):
        reporting.check_thresholds([("x", 1.0, "==", 1.0)])
