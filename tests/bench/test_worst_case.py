"""The worst-case benchmark runs every case and reports numbers; timing verdicts are its business, not ours."""

import json

from neo_ml.bench.worst_case import CASES, main, run_worst_case


def test_every_case_reports_seconds_per_size_a_ratio_and_a_verdict():
    results = run_worst_case(sizes=(8192, 16384))
    assert set(results) == set(CASES)
    for name, row in results.items():
        assert set(row["seconds"]) == {8192, 16384}, name
        if row["verdict"] == "ok":
            assert all(isinstance(s, float) and s >= 0 for s in row["seconds"].values()), name
            assert row["passed"] is True
        assert isinstance(row["verdict"], str) and row["verdict"], name


def test_each_builder_makes_an_input_of_the_requested_size():
    for name, case in CASES.items():
        if name.startswith("read_json/"):  # these write a file; the benchmark's child process removes it
            continue
        value = case.build(4096)
        if isinstance(value, str):
            assert abs(len(value) - 4096) <= 40, name  # the prose cases wrap the blob in a sentence


def test_the_command_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "worst.json"
    code = main(["--sizes", "1024", "2048", "--only", "email/", "--json", str(out)])
    table = capsys.readouterr().out
    assert code == 0 and table.startswith("| case |") and "email/long word" in table
    assert set(json.loads(out.read_text())) == {name for name in CASES if name.startswith("email/")}
