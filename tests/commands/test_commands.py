"""Every command answers bad input with one line on stderr and exit status 1, never a traceback."""

import json

import pytest

from neo_ml.commands import import_data, pipeline, train_classification, train_ncf


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _interactions(tmp_path, rows):
    return str(_write(tmp_path, "i.json", json.dumps({"interactions": rows})))


GOOD_ROWS = [{"user_id": "u", "item_id": f"i{n}", "timestamp": n} for n in range(3)]
BAD_ROWS = [{"user_id": "u", "item_id": "i", "timestamp": "soon"}]
BAD_SAMPLES = {"samples": [{"text": "", "taxonomy_codes": ["000"]}]}

CASES = {  # command, arguments for a tmp folder, what the one line must say ({t}: the tmp folder)
    "train_ncf: not JSON": (
        train_ncf.main, lambda t: ["--data", str(_write(t, "i.json", "{oops")), "--output", str(t / "m.pt")],
        "i.json: not valid JSON"),
    "train_ncf: bad record": (
        train_ncf.main, lambda t: ["--data", _interactions(t, BAD_ROWS), "--output", str(t / "m.pt")],
        "i.json, record 0, field 'timestamp'"),
    "train_ncf: unreachable database": (
        train_ncf.main, lambda t: ["--data", "postgresql+psycopg://nobody@127.0.0.1:1/none",
                                   "--output", str(t / "m.pt")],
        "postgresql+psycopg://nobody@127.0.0.1:1/none: "),
    "train_ncf: resume without state": (
        train_ncf.main, lambda t: ["--data", _interactions(t, GOOD_ROWS), "--output", str(t / "m.pt"), "--resume"],
        "m.state.pt: no training state to resume from"),
    "train_classification: bad sample": (
        train_classification.main,
        lambda t: ["--data", str(_write(t, "c.json", json.dumps(BAD_SAMPLES))), "--output", str(t / "c")],
        "c.json, record 0, field 'text'"),
    "import_data: missing file": (
        import_data.main, lambda t: ["--data", str(t / "none.json")], "none.json: file not found"),
    "import_data: a folder as the database": (
        import_data.main, lambda t: ["--data", _interactions(t, GOOD_ROWS), "--database", f"sqlite:///{t}"],
        "sqlite:///{t}: "),
    "pipeline: unknown key": (
        pipeline.main, lambda t: ["--config", str(_write(t, "p.yaml", "ncf:\n  epochz: 1\n")), "--run-name", "x",
                                  "--no-progress"],
        "unknown key(s) ['epochz']"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_1_with_one_line_naming_the_problem(case, tmp_path, capsys):
    command, arguments, expected = CASES[case]
    assert command(arguments(tmp_path)) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected.replace("{t}", str(tmp_path)) in lines[0], lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
