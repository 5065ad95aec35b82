import json

import pytest

from neo_ml.commands.train_ncf import main
from neo_ml.data.splits import leave_one_out_split
from neo_ml.ncf.baselines import PopularityModel
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.evaluate import evaluate_model
from neo_ml.ncf.train import train_ncf_model


def test_training_beats_popularity_end_to_end(synthetic_split):
    result = train_ncf_model(synthetic_split, NCFConfig(architecture="neumf", embedding_dim=32, hidden_layers=[64, 32],
                                                        epochs=15, batch_size=256, seed=0), progress=False)
    model = evaluate_model(result.model, synthetic_split, "test")
    popularity = evaluate_model(PopularityModel(synthetic_split.train, synthetic_split.num_items),
                                synthetic_split, "test")
    assert model["ndcg@10"] > 1.2 * popularity["ndcg@10"]
    assert model["ndcg@10_full"] > 1.2 * popularity["ndcg@10_full"]
    assert model["hr@10"] > popularity["hr@10"]
    assert len(result.history) >= result.best_epoch
    assert {"train_loss", "val_loss", "val_hr@10", "val_ndcg@10"} <= set(result.history[0])


def test_training_is_reproducible(synthetic_frame):
    split = leave_one_out_split(synthetic_frame.head(1500), seed=1)
    config = NCFConfig(architecture="neumf", embedding_dim=8, hidden_layers=[8], epochs=2, batch_size=128, seed=3)
    a = train_ncf_model(split, config, progress=False)
    b = train_ncf_model(split, config, progress=False)
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    assert a.validation_metrics == b.validation_metrics


def test_epoch_is_chosen_on_validation_not_test(synthetic_split, monkeypatch):
    """The training loop must never evaluate the test item."""
    import neo_ml.ncf.train as train

    calls = []
    original = train.evaluate_model

    def spy(model, split, which="test", **kw):
        calls.append(which)
        return original(model, split, which, **kw)

    monkeypatch.setattr(train, "evaluate_model", spy)
    train_ncf_model(synthetic_split, NCFConfig(architecture="neumf", embedding_dim=8, hidden_layers=[8], epochs=2),
                    progress=False)
    assert calls and set(calls) == {"validation"}


def test_command_prints_one_json_line(trained_checkpoint, synthetic_json, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["--data", str(synthetic_json), "--output", str(out), "--epochs", "1", "--embedding-dim", "8",
                 "--hidden-layers", "8", "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    metrics = json.loads(lines[0])
    assert metrics["best_epoch"] == 1 and 0 <= metrics["val_hr@10"] <= 1
    assert out.is_file()


def test_held_out_test_is_evaluated_not_trained_on(tmp_path, capsys, backend_document):
    document = backend_document
    document["interactions"] += [{"user_id": f"user_{u:03d}", "resource_id": f"resource_{(u * 7 + k) % 40:03d}",
                                  "timestamp": 1_700_000_000 + 60 * k, "strength": 1.0}
                                 for u in range(30) for k in range(8)]
    path = tmp_path / "backend.json"
    path.write_text(json.dumps(document))
    assert main(["--data", str(path), "--output", str(tmp_path / "m.pt"), "--epochs", "1",
                 "--no-progress"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["held_out_cases"] + metrics["held_out_skipped"] == 1


@pytest.mark.parametrize(("content", "message"), [
    ("{broken", "not valid JSON"),
    ('{"interactions": [{"user_id": "a"}]}', "record 0, field 'item_id'"),
])
def test_bad_input_exits_1_with_one_line_and_keeps_the_old_checkpoint(tmp_path, capsys, content, message):
    data = tmp_path / "bad.json"
    data.write_text(content)
    output = tmp_path / "model.pt"
    output.write_bytes(b"previous good checkpoint")
    assert main(["--data", str(data), "--output", str(output)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert output.read_bytes() == b"previous good checkpoint"


def test_bad_arguments_exit_1(tmp_path, synthetic_json, capsys):
    assert main(["--data", str(synthetic_json), "--output", str(tmp_path / "m.pt"), "--epochs", "0"]) == 1
    assert "error: epochs must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["--data", "nonsense", "--output", str(tmp_path / "m.pt")]) == 1


def test_import_then_train_from_the_database(tmp_path, synthetic_json, capsys):
    from neo_ml.commands.import_data import main as import_main

    url = f"sqlite:///{tmp_path / 'neo.db'}"
    assert import_main(["--data", str(synthetic_json), "--database", url]) == 0
    assert json.loads(capsys.readouterr().out)["interactions"] > 0
    assert main(["--data", url, "--output", str(tmp_path / "m.pt"), "--epochs", "2", "--embedding-dim", "8",
                 "--hidden-layers", "8", "--no-progress"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["data"] == url and metrics["val_hr@10"] > 0
