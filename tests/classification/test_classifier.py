"""The taxonomy classifier on a tiny real subset (20NG Dewey view), short sequences to stay fast."""

import json
import random

import numpy as np
import pytest

from neo_ml import InvalidRequestError, MLClassificationService
from neo_ml.classification import calibration
from neo_ml.classification.checkpoint import load_classifier
from neo_ml.classification.service import ClassifierNotFoundError
from neo_ml.data.corpora import load_text_corpus
from neo_ml.errors import CheckpointError


def test_thresholds_maximise_f1_per_label():
    probabilities = np.array([[0.9, 0.2], [0.7, 0.6], [0.3, 0.65], [0.1, 0.7]] * 3)
    targets = np.array([[1, 0], [1, 0], [0, 1], [0, 1]] * 3)
    cuts = calibration.choose_thresholds(probabilities, targets, min_positives=2)
    assert 0.3 < cuts[0] <= 0.7 and 0.6 < cuts[1] <= 0.65
    chosen = calibration.decide(probabilities, cuts)
    assert (chosen == targets.astype(bool)).all()


def test_decide_always_selects_the_best_label():
    chosen = calibration.decide(np.array([[0.2, 0.3]]), np.array([0.5, 0.5]))
    assert chosen.tolist() == [[False, True]]


def test_platt_scaling_learns_the_score_to_probability_map():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4000, 1))
    targets = (rng.random((4000, 1)) < calibration.sigmoid(2 * scores - 1)).astype(int)
    scale, bias = calibration.fit_platt(scores, targets)
    assert scale == pytest.approx(2, abs=0.25) and bias == pytest.approx(-1, abs=0.2)


def test_reliability_table_bins():
    table = calibration.reliability_table(np.array([0.55, 0.95, 0.97, 1.0]), np.array([0, 1, 1, 0]))
    by_bin = {row["bin"]: row for row in table}
    assert by_bin["[0.95, 1.00]"]["count"] == 3
    assert by_bin["[0.95, 1.00]"]["accuracy"] == pytest.approx(2 / 3)
    assert sum(row["count"] for row in table) == 4




def test_fine_tune_reports_validation_metrics_and_beats_chance(trained_service, dewey_subset):
    service, metrics = trained_service
    assert {"f1", "precision", "recall", "loss", "accuracy"} <= set(metrics)
    _, test = dewey_subset
    hits = [set(service.predict(text).codes[:1]) <= set(labels) for text, labels in test]
    labels = {code for _, codes in test for code in codes}
    assert np.mean(hits) > 2 / len(labels)  # top-1 precision well above picking a code at random


def test_predict_is_ranked_and_shaped(trained_service, dewey_subset):
    service, _ = trained_service
    result = service.predict(dewey_subset[1][0][0], top_k=3)
    confidences = [p.confidence for p in result.predictions]
    assert len(result.predictions) == 3 and confidences == sorted(confidences, reverse=True)
    assert [p.rank for p in result.predictions] == [1, 2, 3] and result.predictions[0].selected
    assert result.model_version == "benchmark_v1" and result.inference_time_ms > 0
    batch = service.predict_batch([text for text, _ in dewey_subset[1][:4]], top_k=2)
    assert len(batch) == 4 and all(len(r.predictions) == 2 for r in batch)
    assert batch[0].predictions[0].taxonomy_code == service.predict(dewey_subset[1][0][0]).predictions[0].taxonomy_code


def test_checkpoint_folder_layout_and_round_trip(trained_service, dewey_subset):
    service, _ = trained_service
    folder = service.checkpoint_dir
    for name in ("model.safetensors", "config.json", "vocab.txt", "label_map.json", "heads.safetensors",
                 "manifest.json", "training_metrics.json"):
        assert (folder / name).is_file(), name
    labels = json.loads((folder / "label_map.json").read_text())
    assert set(labels) == {"id_to_label", "label_to_id"}
    texts = [text for text, _ in dewey_subset[1][:5]]
    again = MLClassificationService(model_path=folder).predict_batch(texts)
    assert [r.to_dict()["predictions"] for r in again] == [r.to_dict()["predictions"]
                                                          for r in service.predict_batch(texts)]


def test_a_corrupted_checkpoint_is_refused(trained_service, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained_service[0].checkpoint_dir, copy)
    with open(copy / "heads.safetensors", "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(CheckpointError, match="heads.safetensors: checksum mismatch"):
        load_classifier(copy)


def test_failed_training_keeps_the_last_good_checkpoint(trained_service):
    service, _ = trained_service
    before = (service.checkpoint_dir / "manifest.json").read_text()
    with pytest.raises(Exception, match="text"):  # noqa: B017 - the data error, whatever its class
        service.fine_tune([("fine text", ["000"]), ("", ["600"])])
    assert (service.checkpoint_dir / "manifest.json").read_text() == before


@pytest.mark.parametrize("bad", ["", "   ", None, 42])
def test_bad_text_is_refused(trained_service, bad):
    with pytest.raises(InvalidRequestError, match="non-empty string"):
        trained_service[0].predict(bad)


def test_a_megabyte_of_text_gets_a_defined_result(trained_service):
    result = trained_service[0].predict("space shuttle orbit " * 50_000)
    assert result.predictions and 0 <= result.predictions[0].confidence <= 1


def test_missing_checkpoint_names_the_training_command(tmp_path):
    with pytest.raises(ClassifierNotFoundError, match="python -m neo_ml.train_classification"):
        MLClassificationService(model_path=tmp_path / "none").predict("text")


def test_training_command_on_a_small_real_json_file(tmp_path, dewey_subset, capsys):
    """About the size of Neo Alexandria's own benchmark file: 120 samples, some with two labels."""
    from neo_ml.commands.train_classification import main
    from neo_ml.data.text import samples_to_document

    data = tmp_path / "small.json"
    data.write_text(json.dumps(samples_to_document(dewey_subset[0][:120])))
    output = tmp_path / "production_v1"
    assert main(["--data", str(data), "--output", str(output), "--max-length", "64", "--no-progress"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics["validation_f1"] <= 1 and metrics["validation_samples"] == 120
    # small data is augmented, training parts only: two variants per original at most
    assert metrics["validation_train_samples"] == 3 * 120
    assert (output / "manifest.json").is_file()


def test_training_command_refuses_bad_input(tmp_path, capsys):
    from neo_ml.commands.train_classification import main

    bad = tmp_path / "bad.json"
    bad.write_text('{"samples": [{"text": "ok", "taxonomy_codes": ["000"]}, {"text": "no labels"}]}')
    assert main(["--data", str(bad), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "record 1" in err and "taxonomy_codes" in err
    assert not (tmp_path / "out").exists()
    assert main(["--data", "imagenet", "--output", str(tmp_path / "out")]) == 1


def test_single_label_data_gets_exactly_one_label(tmp_path):
    train, _ = load_text_corpus("r8")
    subset = random.Random(1).sample(train, 200)
    service = MLClassificationService(model_path=tmp_path / "r8")
    service.fine_tune(subset, max_length=32)
    assert service.model.single_label
    results = service.predict_batch([text for text, _ in subset[:10]])
    assert all(len(r.codes) == 1 and r.codes[0] == r.predictions[0].taxonomy_code for r in results)
