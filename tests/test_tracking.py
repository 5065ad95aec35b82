"""MLflow tracking: what a training run leaves in the store, serving a registered version, and a dead server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from neo_ml.errors import CheckpointIntegrityError, NeoMLError
from neo_ml.ncf.service import NCFService
from neo_ml.tracking import Tracker, fetch_model, metric_name, track_training


@pytest.fixture(autouse=True)
def _tracking_on(monkeypatch):
    """The suite turns tracking off (conftest); these tests turn it back on."""
    monkeypatch.delenv("NEO_ML_NO_TRACKING", raising=False)


@pytest.fixture
def store(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _only_run(uri: str):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("neo-ml").experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_training_run_is_tracked_registered_and_served(store, trained_checkpoint, tmp_path):
    """Params, per-epoch curves, final metrics, the checkpoint with its checksum, a registry version that
    NCFService serves; a byte flipped in the stored artifact is refused."""
    from neo_ml.files import checksum_path
    from neo_ml.ncf.checkpoint import load_ncf_checkpoint

    checkpoint = load_ncf_checkpoint(trained_checkpoint)
    history = checkpoint["training_history"]
    tracker = Tracker(store).start("train")
    version = track_training(tracker, "neo-ml-ncf", {"config": checkpoint["config"], "data": "synthetic"},
                             history, {"test_hr@10": 0.5, "device": "cpu"},
                             [trained_checkpoint, checksum_path(trained_checkpoint)], aliases=["benchmark"])
    assert version == "1"
    client, run = _only_run(store)
    assert run.info.status == "FINISHED"
    assert run.data.params["config.embedding_dim"] == str(checkpoint["config"]["embedding_dim"])
    assert "git_commit" in run.data.params and "packages.torch" in run.data.params
    assert run.data.metrics["test_hr_at_10"] == 0.5 and "device" not in run.data.metrics
    curve = client.get_metric_history(run.info.run_id, "train_loss")
    assert [point.step for point in curve] == [record["epoch"] for record in history]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")} == {
        f"checkpoint/{trained_checkpoint.name}", f"checkpoint/{trained_checkpoint.name}.sha256"}

    for uri in ("models:/neo-ml-ncf/1", "models:/neo-ml-ncf@benchmark"):
        served = NCFService(model_uri=uri, tracking_uri=store)
        assert served.recommend(served.known_user_ids()[0], top_k=3)

    stored = fetch_model("models:/neo-ml-ncf/1", store, suffix=".pt")
    source = client.get_model_version("neo-ml-ncf", "1").source.removeprefix("file://")
    artifact = next(path for path in Path(source).iterdir() if path.suffix == ".pt")
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 1
    artifact.write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError):
        NCFService(model_uri="models:/neo-ml-ncf/1", tracking_uri=store).recommend("u1", top_k=3)
    assert stored.read_bytes() != artifact.read_bytes()  # the earlier download was a copy


def test_child_runs_name_their_parent(store):
    parent = Tracker(store).start("pipeline")
    child = parent.child("ncf")
    child.log_history([{"epoch": 1, "val_ndcg@10": 0.3}, {"epoch": 2, "val_ndcg@10": 0.35}])
    child.finish()
    parent.finish()
    client = MlflowClient(store)
    assert client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent.run_id
    assert [p.value for p in client.get_metric_history(child.run_id, "val_ndcg_at_10")] == [0.3, 0.35]


def test_a_dead_server_gives_one_warning_and_the_run_goes_on(capsys):
    started = time.perf_counter()
    tracker = Tracker("http://127.0.0.1:9").start("x")  # port 9 (discard): nothing listens
    tracker.log_params({"a": 1})
    tracker.log_metrics({"b": 2.0})
    assert tracker.register("neo-ml-ncf", "checkpoint") is None
    tracker.finish()
    assert time.perf_counter() - started < 10
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: MLflow")]
    assert len(warnings) == 1 and "127.0.0.1:9" in warnings[0]


def test_no_tracking_touches_nothing(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'x.db'}", enabled=False).start("x")
    tracker.log_params({"a": 1})
    tracker.finish()
    assert not (tmp_path / "x.db").exists()


def test_train_command_logs_to_mlflow_tracking_uri(store, synthetic_json, tmp_path, monkeypatch, capsys):
    from neo_ml.commands.train_ncf import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    output = tmp_path / "m.pt"
    assert main(["--data", str(synthetic_json), "--output", str(output), "--no-progress", "--architecture",
                 "neumf", "--embedding-dim", "8", "--hidden-layers", "16", "--epochs", "2"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    client, run = _only_run(store)
    assert run.data.params["data_checksum"] and run.data.params["config.epochs"] == "2"
    assert run.data.metrics["best_epoch"] == printed["best_epoch"]
    assert client.get_model_version("neo-ml-ncf", "1").run_id == run.info.run_id


def test_fetched_model_folders_are_removed_at_exit_or_when_the_fetch_fails(store, tmp_path, monkeypatch):
    """A served registry version leaves no copy behind: the download lives as long as the process."""
    import subprocess
    import sys
    import tempfile

    checkpoint = tmp_path / "m.pt"
    checkpoint.write_bytes(b"weights")
    tracker = Tracker(store).start("train")
    assert track_training(tracker, "neo-ml-ncf", {}, [], {}, [checkpoint]) == "1"
    fetch = ("import sys; from neo_ml.tracking import fetch_model; "
             "path = fetch_model('models:/neo-ml-ncf/1', sys.argv[1], suffix='.pt'); "
             "assert path.read_bytes() == b'weights'; print(path)")
    printed = subprocess.run([sys.executable, "-c", fetch, store], check=True, capture_output=True, text=True)
    fetched = Path(printed.stdout.strip().splitlines()[-1])
    download = next(folder for folder in fetched.parents if folder.name.startswith("neo-ml-model-"))
    assert fetched.name == "m.pt" and not download.exists()

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "downloads"))
    (tmp_path / "downloads").mkdir()
    with pytest.raises(NeoMLError, match="cannot fetch the model"):
        fetch_model("models:/neo-ml-ncf/7", store)
    assert list((tmp_path / "downloads").iterdir()) == []


def test_metric_names_and_bad_model_uris():
    assert metric_name("val_hr@10") == "val_hr_at_10"
    with pytest.raises(NeoMLError, match="models:/NAME@ALIAS"):
        fetch_model("runs:/abc/model")


def test_classifier_folder_is_registered_and_served(store, trained_service):
    """The checkpoint folder as a version of neo-ml-classifier; a tampered stored file is refused."""
    from neo_ml.classification.service import MLClassificationService

    service, _ = trained_service
    tracker = Tracker(store).start("train_classification")
    assert track_training(tracker, "neo-ml-classifier", {"data": "20ng-dewey subset"}, [], {"test_f1": 0.9},
                          [service.checkpoint_dir], aliases=["production"]) == "1"
    text = "The library bought new books on astronomy and the history of science."
    served = MLClassificationService(model_uri="models:/neo-ml-classifier@production", tracking_uri=store)
    assert served.predict(text).predictions == service.predict(text).predictions

    source = Path(MlflowClient(store).get_model_version("neo-ml-classifier", "1").source.removeprefix("file://"))
    weights = max((path for path in source.iterdir() if path.name != "manifest.json"), key=lambda p: p.stat().st_size)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError):
        MLClassificationService(model_uri="models:/neo-ml-classifier/1", tracking_uri=store).predict(text)


def test_promote_moves_the_alias_and_refuses_a_missing_version(store, capsys):
    from neo_ml.commands.promote import main

    tracker = Tracker(store).start("train")
    for _ in range(2):
        tracker.register("neo-ml-ncf", "checkpoint")
    assert main(["neo-ml-ncf", "2", "--alias", "production", "--tracking-uri", store]) == 0
    assert json.loads(capsys.readouterr().out)["model_uri"] == "models:/neo-ml-ncf@production"
    assert str(MlflowClient(store).get_model_version_by_alias("neo-ml-ncf", "production").version) == "2"
    assert main(["neo-ml-ncf", "7", "--tracking-uri", store]) == 1
    assert "neo-ml-ncf version 7" in capsys.readouterr().err
    assert str(MlflowClient(store).get_model_version_by_alias("neo-ml-ncf", "production").version) == "2"


def test_the_ui_server_shows_the_experiment_and_its_run(store):
    """``make ui``'s server: its page loads, and the experiment's runs (what the page lists) include ours."""
    import socket
    import subprocess
    import urllib.request

    from neo_ml.tracking import ui_command

    tracker = Tracker(store).start("shown in the ui")
    tracker.finish()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(ui_command(port, store), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                page = urllib.request.urlopen(f"{base}/", timeout=5).read().decode()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the UI server did not start"
                time.sleep(0.5)
        assert "MLflow" in page
        experiment = json.loads(urllib.request.urlopen(
            f"{base}/ajax-api/2.0/mlflow/experiments/get-by-name?experiment_name=neo-ml", timeout=10).read())
        experiment_id = experiment["experiment"]["experiment_id"]
        request = urllib.request.Request(f"{base}/ajax-api/2.0/mlflow/runs/search", method="POST",
                                         data=json.dumps({"experiment_ids": [experiment_id]}).encode(),
                                         headers={"Content-Type": "application/json"})
        runs = json.loads(urllib.request.urlopen(request, timeout=10).read())["runs"]
        assert [run["info"]["run_name"] for run in runs] == ["shown in the ui"]
        assert urllib.request.urlopen(f"{base}/#/experiments/{experiment_id}", timeout=10).status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
