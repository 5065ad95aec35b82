"""The OpenVINO int8 inference backend against torch, on a small real checkpoint (20NG Dewey view)."""

import json
import shutil

import pytest

from neo_ml import MLClassificationService
from neo_ml.classification import openvino_encoder
from neo_ml.classification.checkpoint import OPENVINO_WEIGHTS, OPENVINO_XML, load_classifier
from neo_ml.errors import CheckpointError, CheckpointIntegrityError


@pytest.fixture(scope="module")
def openvino_folder(tmp_path_factory, dewey_subset):
    """A checkpoint trained to serve through openvino-int8 (training makes its quantised IR)."""
    folder = tmp_path_factory.mktemp("openvino") / "checkpoint"
    service = MLClassificationService(model_path=folder, inference="openvino-int8")
    service.fine_tune(dewey_subset[0], max_length=64, batch_size=32)
    return folder


def test_embeddings_and_probabilities_stay_close_to_torch(openvino_folder, dewey_subset):
    texts = [text for text, _ in dewey_subset[1]]
    reference, fast = load_classifier(openvino_folder, "torch"), load_classifier(openvino_folder, "openvino-int8")
    cosine = (reference.inference_embed(texts) * fast.inference_embed(texts)).sum(axis=1)  # unit rows
    torch_probabilities, int8_probabilities = reference.predict_proba(texts), fast.predict_proba(texts)
    agreement = (int8_probabilities.argmax(1) == torch_probabilities.argmax(1)).mean()
    print(f"cosine mean {cosine.mean():.4f} min {cosine.min():.4f}; top-1 agreement {agreement:.3f}")
    assert cosine.mean() > 0.99 and cosine.min() > 0.97 and agreement >= 0.95


def test_the_ir_is_compiled_once_per_process(openvino_folder):
    first = load_classifier(openvino_folder, "openvino-int8")
    first.inference_embed(["a text"])
    compiled = dict(openvino_encoder._compiled)
    second = load_classifier(openvino_folder, "openvino-int8")
    second.inference_embed(["another text"])
    assert openvino_encoder._compiled == compiled and second._fast_encoder.compiled is first._fast_encoder.compiled


@pytest.mark.parametrize("name", [OPENVINO_XML, OPENVINO_WEIGHTS])
def test_a_tampered_or_missing_ir_file_is_refused(openvino_folder, tmp_path, name):
    manifest = json.loads((openvino_folder / "manifest.json").read_text())
    assert {OPENVINO_XML, OPENVINO_WEIGHTS} <= set(manifest["files"])
    tampered = tmp_path / "tampered"
    shutil.copytree(openvino_folder, tampered)
    data = bytearray((tampered / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / name).write_bytes(bytes(data))
    for inference in ("openvino-int8", "torch"):
        with pytest.raises(CheckpointIntegrityError, match=name):
            load_classifier(tampered, inference)
    missing = tmp_path / "missing"
    shutil.copytree(openvino_folder, missing)
    (missing / name).unlink()
    with pytest.raises(CheckpointIntegrityError, match=name):
        load_classifier(missing, "openvino-int8")


def test_a_checkpoint_without_the_ir_names_what_to_do(trained_service):
    with pytest.raises(CheckpointError, match=f"no {OPENVINO_XML}.*train it again"):
        load_classifier(trained_service[0].checkpoint_dir, "openvino-int8")


def test_an_older_checkpoint_gets_the_ir_from_its_training_texts(trained_service, dewey_subset, tmp_path):
    from neo_ml.classification.checkpoint import add_openvino_int8

    folder = tmp_path / "older"
    shutil.copytree(trained_service[0].checkpoint_dir, folder)
    before = json.loads((folder / "manifest.json").read_text())["files"]
    add_openvino_int8(folder, [text for text, _ in dewey_subset[0]])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {name: manifest["files"][name] for name in before} == before and "openvino_int8" in manifest
    served = MLClassificationService(model_path=folder, inference="openvino-int8")
    assert served.predict(dewey_subset[1][0][0]).to_dict()["predictions"]
