"""Checkpoint integrity: every tampered or truncated checkpoint is refused, and none can run code."""

import shutil

import numpy as np
import pytest
import torch

from neo_ml import CheckpointError, CheckpointIntegrityError, MLClassificationService, NCFService
from neo_ml.classification.checkpoint import load_classifier
from neo_ml.files import checksum_path, file_sha256, write_json
from neo_ml.ncf.checkpoint import load_ncf_checkpoint

TAMPER_POSITIONS = 60  # byte flips per file, spread over its whole length
TRUNCATIONS = 40


def _flip(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def _spread(size, count, rng):
    """Positions covering the start, the end and random points between."""
    return sorted({0, size - 1, *rng.integers(0, size, count - 2).tolist()})


def test_every_flipped_byte_of_an_ncf_checkpoint_is_refused(trained_checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    size = trained_checkpoint.stat().st_size
    refused = 0
    positions = _spread(size, TAMPER_POSITIONS, rng)
    for position in positions:
        copy = tmp_path / "tampered.pt"
        shutil.copy(trained_checkpoint, copy)
        shutil.copy(checksum_path(trained_checkpoint), checksum_path(copy))
        _flip(copy, position)
        with pytest.raises(CheckpointIntegrityError, match="tampered.pt: SHA-256 mismatch"):
            load_ncf_checkpoint(copy)
        refused += 1
    assert refused == len(positions) >= TAMPER_POSITIONS - 2


def test_every_truncation_of_an_ncf_checkpoint_is_refused_as_an_integrity_error(trained_checkpoint, tmp_path):
    data = trained_checkpoint.read_bytes()
    for length in np.linspace(0, len(data) - 1, TRUNCATIONS).astype(int):
        copy = tmp_path / "truncated.pt"
        copy.write_bytes(data[:length])
        shutil.copy(checksum_path(trained_checkpoint), checksum_path(copy))
        with pytest.raises(CheckpointIntegrityError, match="truncated.pt"):
            load_ncf_checkpoint(copy)


def test_a_missing_or_broken_checksum_file_is_refused(trained_checkpoint, tmp_path):
    copy = tmp_path / "ncf.pt"
    shutil.copy(trained_checkpoint, copy)
    with pytest.raises(CheckpointIntegrityError, match="no checksum file ncf.pt.sha256"):
        load_ncf_checkpoint(copy)
    checksum_path(copy).write_text('{"sha256": "abc"')
    with pytest.raises(CheckpointIntegrityError, match="unreadable checksum file"):
        load_ncf_checkpoint(copy)


def test_the_untouched_checkpoint_loads_and_serves(trained_checkpoint):
    checkpoint = load_ncf_checkpoint(trained_checkpoint)
    assert checkpoint["num_users"] > 0
    assert NCFService(model_path=trained_checkpoint).recommend("1", top_k=3)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_a_checkpoint_that_would_run_code_is_refused_even_when_sealed(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model_state_dict": _RunsCode()}, path)
    with pytest.raises(CheckpointIntegrityError, match="no checksum file evil.pt.sha256"):
        load_ncf_checkpoint(path)
    write_json(checksum_path(path), {"sha256": [file_sha256(path)]})  # a forger can write checksums too:
    # weights_only still refuses to build the object
    with pytest.raises(CheckpointError, match="not a readable NCF checkpoint"):
        load_ncf_checkpoint(path)
    assert "this ran" not in capsys.readouterr().out


def test_every_file_of_a_classifier_checkpoint_is_guarded(classifier_copy, tmp_path):
    rng = np.random.default_rng(1)
    files = sorted(p.name for p in classifier_copy.iterdir() if p.name != "manifest.json")
    assert {"model.safetensors", "heads.safetensors", "classifier.json", "vocab.txt"} <= set(files)
    cases = 0
    for name in files:
        size = (classifier_copy / name).stat().st_size
        for position in _spread(size, 6, rng):
            tampered = tmp_path / f"flip-{cases}"
            shutil.copytree(classifier_copy, tampered)
            _flip(tampered / name, position)
            with pytest.raises(CheckpointIntegrityError, match=f"{name}: checksum mismatch"):
                load_classifier(tampered)
            cases += 1
        truncated = tmp_path / f"cut-{cases}"
        shutil.copytree(classifier_copy, truncated)
        (truncated / name).write_bytes((truncated / name).read_bytes()[: size // 2])
        with pytest.raises(CheckpointIntegrityError, match=f"{name}: checksum mismatch"):
            load_classifier(truncated)
        cases += 1
    assert cases >= 3 * len(files)


def test_an_added_pickle_weight_file_or_a_broken_manifest_is_refused(classifier_copy):
    torch.save({"weights": torch.zeros(1)}, classifier_copy / "pytorch_model.bin")
    with pytest.raises(CheckpointIntegrityError, match="pytorch_model.bin: not in the manifest"):
        load_classifier(classifier_copy)
    (classifier_copy / "pytorch_model.bin").unlink()
    manifest = classifier_copy / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(CheckpointIntegrityError, match="unreadable manifest"):
        load_classifier(classifier_copy)


def test_the_service_refuses_a_tampered_classifier_without_caching_it(classifier_copy):
    _flip(classifier_copy / "heads.safetensors", 10)
    service = MLClassificationService(model_path=classifier_copy)
    with pytest.raises(CheckpointIntegrityError):
        service.predict("a text about computers")
    assert service.model is None
