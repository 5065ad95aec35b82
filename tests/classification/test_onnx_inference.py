"""The int8 ONNX Runtime inference backend against torch, on a small real checkpoint (20NG Dewey view)."""

import json
import shutil
from collections import Counter

import numpy as np
import pytest

from neo_ml import InvalidRequestError, MLClassificationService
from neo_ml.classification import checkpoint as classifier_checkpoint
from neo_ml.classification.checkpoint import ONNX_INT8, load_classifier, save_classifier
from neo_ml.classification.model import ClassifierConfig
from neo_ml.errors import CheckpointIntegrityError, NeoMLError


@pytest.fixture(scope="module")
def int8_folder(tmp_path_factory, trained_service):
    """A copy of the session's checkpoint, loaded once for int8 (which adds the export to it)."""
    folder = tmp_path_factory.mktemp("int8") / "checkpoint"
    shutil.copytree(trained_service[0].checkpoint_dir, folder)
    MLClassificationService(model_path=folder, inference="onnx-int8").labels  # noqa: B018 - loads
    return folder


@pytest.fixture(scope="module")
def test_texts(dewey_subset):
    return [text for text, _ in dewey_subset[1]]


@pytest.mark.parametrize("inference", ["onnx-int8", "torch-int8"])
def test_int8_embeddings_and_probabilities_stay_close_to_torch(int8_folder, test_texts, inference):
    """Both int8 backends, on the same checkpoint and texts."""
    reference, fast = load_classifier(int8_folder, "torch"), load_classifier(int8_folder, inference)
    cosine = (reference.inference_embed(test_texts) * fast.inference_embed(test_texts)).sum(axis=1)  # unit rows
    torch_probabilities, int8_probabilities = reference.predict_proba(test_texts), fast.predict_proba(test_texts)
    difference = np.abs(int8_probabilities - torch_probabilities)
    agreement = (int8_probabilities.argmax(1) == torch_probabilities.argmax(1)).mean()
    print(f"cosine mean {cosine.mean():.4f} min {cosine.min():.4f}; probability difference mean "
          f"{difference.mean():.4f} max {difference.max():.4f}; top-1 agreement {agreement:.3f}")
    assert cosine.mean() > 0.99 and cosine.min() > 0.97  # one scale per tensor gave a mean of 0.948
    assert difference.mean() < 0.01 and agreement >= 0.95


def test_the_export_is_fused_and_its_matrix_products_are_int8(int8_folder):
    """ONNX Runtime's optimiser fused every layer (attention, skip-LayerNorm, GELU) and the quantiser made
    every matrix product int8, attention's QKV projection included: no float MatMul or unfused Softmax left."""
    import onnx

    layers = json.loads((int8_folder / "config.json").read_text())["num_hidden_layers"]
    ops = Counter(node.op_type for node in onnx.load_from_string((int8_folder / ONNX_INT8).read_bytes()).graph.node)
    assert ops["QAttention"] == layers and ops["SkipLayerNormalization"] == 2 * layers
    assert ops["BiasGelu"] == layers and ops["MatMulInteger"] == 3 * layers  # attention output, FFN in and out
    assert ops["QEmbedLayerNormalization"] == 1
    assert not {"MatMul", "Attention", "Softmax", "LayerNormalization", "Erf"} & set(ops)


def test_int8_predictions_are_deterministic_and_the_export_is_reused(int8_folder, test_texts):
    digest = json.loads((int8_folder / "manifest.json").read_text())["files"][ONNX_INT8]
    first = MLClassificationService(model_path=int8_folder, inference="onnx-int8").predict_batch(test_texts[:20])
    again = MLClassificationService(model_path=int8_folder, inference="onnx-int8").predict_batch(test_texts[:20])
    assert [r.to_dict()["predictions"] for r in first] == [r.to_dict()["predictions"] for r in again]
    assert json.loads((int8_folder / "manifest.json").read_text())["files"][ONNX_INT8] == digest


def test_the_export_is_in_the_manifest_and_tampering_is_refused(int8_folder, tmp_path):
    folder = tmp_path / "tampered"
    shutil.copytree(int8_folder, folder)
    assert ONNX_INT8 in json.loads((folder / "manifest.json").read_text())["files"]
    data = bytearray((folder / ONNX_INT8).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / ONNX_INT8).write_bytes(bytes(data))
    for inference in ("onnx-int8", "torch"):
        with pytest.raises(CheckpointIntegrityError, match=ONNX_INT8):
            load_classifier(folder, inference)


def test_a_failed_export_leaves_the_checkpoint_as_it_was(trained_service, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoint"
    shutil.copytree(trained_service[0].checkpoint_dir, folder)
    before = sorted(p.name for p in folder.iterdir())

    def crash(self):
        raise RuntimeError("export killed")

    monkeypatch.setattr(classifier_checkpoint.TaxonomyClassifier, "export_onnx_int8", crash)
    with pytest.raises(RuntimeError, match="export killed"):
        load_classifier(folder, "onnx-int8")
    assert sorted(p.name for p in folder.iterdir()) == before
    assert load_classifier(folder).config.inference == "torch"


def test_a_checkpoint_saved_for_int8_carries_its_export_and_serves_int8(int8_folder, tmp_path, test_texts):
    model = load_classifier(int8_folder, "onnx-int8")
    saved = save_classifier(model, tmp_path / "saved")
    assert ONNX_INT8 in json.loads((saved / "manifest.json").read_text())["files"]
    again = load_classifier(saved)
    assert again.config.inference == "onnx-int8"
    assert np.array_equal(again.predict_proba(test_texts[:10]), model.predict_proba(test_texts[:10]))


@pytest.mark.parametrize("make", [
    lambda folder: MLClassificationService(model_path=folder, inference="onnx-fp16"),
    lambda folder: load_classifier(folder, "int8"),
    lambda folder: ClassifierConfig(inference="ONNX"),
])
def test_an_unknown_inference_backend_is_a_clear_error(make, int8_folder):
    with pytest.raises(InvalidRequestError, match="expected one of torch, onnx-int8") as caught:
        make(int8_folder)
    assert isinstance(caught.value, NeoMLError)
