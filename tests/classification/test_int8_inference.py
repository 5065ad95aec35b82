"""The static int8 Inductor backend (torch-int8) on the session's small real checkpoint. Its closeness to torch
is tested beside onnx-int8's (test_onnx_inference.py)."""

import json
import shutil
from collections import Counter

import numpy as np
import pytest

from neo_ml import MLClassificationService
from neo_ml.classification.checkpoint import INT8_CALIBRATION, MANIFEST, load_classifier
from neo_ml.classification.int8_encoder import CalibrationMismatchError, Int8Encoder
from neo_ml.errors import CheckpointError, CheckpointIntegrityError


@pytest.fixture(scope="module")
def folder(trained_service):
    return trained_service[0].checkpoint_dir


@pytest.fixture(scope="module")
def test_texts(dewey_subset):
    return [text for text, _ in dewey_subset[1]]


@pytest.fixture(scope="module")
def fast(folder):
    """The checkpoint served through torch-int8 (compiled once for the module: about 20 s)."""
    return load_classifier(folder, "torch-int8")


def test_training_records_the_calibration_in_the_manifest(folder):
    assert INT8_CALIBRATION in json.loads((folder / MANIFEST).read_text())["files"]
    assert load_classifier(folder).int8_calibration  # loaded whatever the backend


def test_a_single_text_gets_the_embedding_it_gets_in_a_batch(fast, test_texts):
    """A lone text runs paired with a copy (one compiled graph for every batch size); same result."""
    alone = np.concatenate([fast.inference_embed([text]) for text in test_texts[:3]])
    assert np.allclose(alone, fast.inference_embed(test_texts[:3]), atol=1e-4)


def test_every_matrix_product_is_int8(fast):
    """Each of the encoder's linear layers reads int8 weights (dequantised per channel into the oneDNN
    kernel by Inductor): 6 per layer, query, key, value, attention output, feed-forward in and out."""
    graph = fast._fast_encoder.quantised.graph
    targets = Counter(str(node.target) for node in graph.nodes if node.op == "call_function")
    layers = fast.encoder[1].config.num_hidden_layers
    per_channel = sum(count for name, count in targets.items() if "dequantize_per_channel" in name)
    linear = sum(count for name, count in targets.items() if name.endswith("linear.default"))
    assert per_channel == linear == 6 * layers
    assert any("quantize_per_tensor" in name for name in targets)  # activations quantised too (static)


def test_int8_predictions_are_deterministic(folder, fast, test_texts):
    again = MLClassificationService(model_path=folder, inference="torch-int8")
    first = [r.to_dict()["predictions"] for r in again.predict_batch(test_texts[:20])]
    assert first == [r.to_dict()["predictions"] for r in again.predict_batch(test_texts[:20])]
    assert np.array_equal(again.model.predict_proba(test_texts[:20]), fast.predict_proba(test_texts[:20]))


def test_a_tampered_calibration_is_refused(folder, tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(folder, copy)
    data = bytearray((copy / INT8_CALIBRATION).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / INT8_CALIBRATION).write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError, match=INT8_CALIBRATION):
        load_classifier(copy, "torch-int8")


def test_a_checkpoint_without_calibration_names_what_is_missing(folder, tmp_path):
    copy = tmp_path / "older"
    shutil.copytree(folder, copy)
    (copy / INT8_CALIBRATION).unlink()
    manifest = json.loads((copy / MANIFEST).read_text())
    del manifest["files"][INT8_CALIBRATION]
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=f"older: no {INT8_CALIBRATION}"):
        load_classifier(copy, "torch-int8")
    assert load_classifier(copy, "torch").int8_calibration is None  # the other backends still serve it


def test_a_calibration_for_another_graph_is_refused(fast):
    calibration = dict(fast.int8_calibration)
    calibration.pop(sorted(calibration)[0])
    with pytest.raises(CalibrationMismatchError, match="train the checkpoint again"):
        Int8Encoder(*fast.encoder, calibration)
