"""Classifier checkpoint folders (``models/classification/<version>/``), written atomically, verified on load.

A folder holds the encoder (``model.safetensors``, ``config.json``, tokenizer
files with ``vocab.txt``), ``heads.safetensors`` (lexical and semantic
weights, thresholds), ``label_map.json``, ``classifier.json`` (fusion weight,
calibration, configuration, vocabulary), ``training_metrics.json`` and
``manifest.json`` with the sha256 of every other file plus provenance.
With the ``onnx-int8`` inference backend it also holds ``encoder-int8.onnx``,
the quantised export of its encoder: written at save time, or added (the
folder rebuilt and swapped in like a save) the first time an older
checkpoint is loaded for that backend. ``int8-calibration.safetensors`` holds
the observer statistics of the ``torch-int8`` backend, recorded by training, and
``encoder-openvino-int8.xml`` / ``.bin`` the ``openvino-int8`` backend's quantised IR, made by training
with that backend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
from pathlib import Path

from safetensors import SafetensorError
from safetensors.numpy import load, save_file

from neo_ml.classification.model import TaxonomyClassifier, check_inference
from neo_ml.data.documents import unicode_problem
from neo_ml.data.text import LabelMap
from neo_ml.errors import CheckpointError, CheckpointIntegrityError, brief
from neo_ml.files import (
    checkpoint_lock,
    file_sha256,
    package_versions,
    read_checkpoint_file,
    recover_folder,
    staging_folder,
    swap_in_folder,
)

MANIFEST = "manifest.json"
ONNX_INT8 = "encoder-int8.onnx"
INT8_CALIBRATION = "int8-calibration.safetensors"
OPENVINO_XML, OPENVINO_WEIGHTS = "encoder-openvino-int8.xml", "encoder-openvino-int8.bin"
# What every checkpoint holds: a manifest without one of them describes no classifier.
REQUIRED_FILES = ("classifier.json", "label_map.json", "heads.safetensors", "training_metrics.json",
                  "config.json", "model.safetensors")
log = logging.getLogger(__name__)


def save_classifier(model: TaxonomyClassifier, folder: str | Path, metrics: dict | None = None,
                    data_checksum: str | None = None) -> Path:
    """Write the checkpoint beside ``folder`` and swap it in; a failure leaves the old one intact."""
    folder = Path(folder)
    staging = staging_folder(folder)
    try:
        model.save_encoder(staging)
        arrays, values = model.state()
        save_file(arrays, str(staging / "heads.safetensors"))
        (staging / "classifier.json").write_text(json.dumps(values))
        (staging / "label_map.json").write_text(json.dumps(model.label_map.to_json(), indent=2))
        (staging / "training_metrics.json").write_text(json.dumps(metrics or {}, indent=2))
        if model.config.inference == "onnx-int8":
            (staging / ONNX_INT8).write_bytes(model.export_onnx_int8())
        if model.int8_calibration is not None:
            save_file(model.int8_calibration, str(staging / INT8_CALIBRATION))
        if model.openvino_int8 is not None:
            (staging / OPENVINO_XML).write_bytes(model.openvino_int8[0])
            (staging / OPENVINO_WEIGHTS).write_bytes(model.openvino_int8[1])
        _write_manifest(staging, {"data_checksum": data_checksum, "package_versions": package_versions(),
                                  "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        swap_in_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write_manifest(staging: Path, provenance: dict) -> None:
    """The manifest: the sha256 of every file in the folder, plus ``provenance``."""
    files = {p.name: file_sha256(p) for p in sorted(staging.iterdir()) if p.is_file() and p.name != MANIFEST}
    (staging / MANIFEST).write_text(json.dumps({"files": files, **provenance}, indent=2))


def add_onnx_int8(folder: Path, model: TaxonomyClassifier, manifest: dict) -> None:
    """Add the int8 export of ``model``'s encoder to its checkpoint."""
    _extend_checkpoint(folder, manifest, {ONNX_INT8: model.export_onnx_int8()}, "onnx_int8")


def add_openvino_int8(folder: str | Path, texts: list[str]) -> None:
    """Give a checkpoint trained without it the ``openvino-int8`` IR, calibrated on ``texts`` (its training
    texts, as training would have)."""
    folder = Path(folder)
    model = load_classifier(folder, "torch")
    model.export_openvino_int8(model.prepare(texts))
    xml, weights = model.openvino_int8
    _extend_checkpoint(folder, verify_checkpoint(folder), {OPENVINO_XML: xml, OPENVINO_WEIGHTS: weights},
                       "openvino_int8")


def _extend_checkpoint(folder: Path, manifest: dict, files: dict[str, bytes], note: str) -> None:
    """Add ``files`` to the checkpoint: the folder is copied, extended and swapped in, so a crash leaves the
    old checkpoint whole and the manifest always lists every file (the addition noted under ``note``)."""
    staging = staging_folder(folder)
    try:
        for file in folder.iterdir():
            if file.is_file() and file.name != MANIFEST:
                shutil.copy2(file, staging / file.name)
        for name, data in files.items():
            (staging / name).write_bytes(data)
        added = {"added_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                 "package_versions": package_versions()}
        _write_manifest(staging, {key: value for key, value in manifest.items() if key != "files"} | {note: added})
        swap_in_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def verify_checkpoint(folder: Path) -> dict:
    """The manifest, after checking every listed file's sha256; a file it does not list is refused too.

    Every entry must name a plain file inside the folder (no path, no link), so a forged manifest can
    make the check read nothing outside it; and it must list every file a classifier needs.
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{folder}: no {MANIFEST}; not a classifier checkpoint")
    manifest, listed = _read_manifest(manifest_path)
    present = {p.name for p in folder.iterdir() if p.name != MANIFEST}
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise CheckpointIntegrityError(f"{folder / unlisted[0]}: not in the manifest; the checkpoint was edited")
    for name, digest in listed.items():
        path = folder / name
        if path.is_symlink() or not path.is_file():
            raise CheckpointIntegrityError(f"{path}: listed in the manifest but missing or not a plain file")
        if _sha256(path) != digest:
            raise CheckpointIntegrityError(f"{path}: checksum mismatch; the checkpoint is corrupt or was edited")
    return manifest


def _read_manifest(path: Path) -> tuple[dict, dict[str, str]]:
    try:
        manifest = json.loads(read_checkpoint_file(path))
        listed = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointIntegrityError(f"{path}: unreadable manifest ({brief(exc)})") from None
    for name, digest in listed.items():
        if not is_plain_name(name) or name == MANIFEST:
            raise CheckpointIntegrityError(f"{path}: entry {brief(name)} is not a file name inside the folder; "
                                           "the manifest was forged or edited")
        if not isinstance(digest, str):
            raise CheckpointIntegrityError(f"{path}: entry {brief(name)} has no hex digest")
    missing = [name for name in REQUIRED_FILES if name not in listed]
    if missing:
        raise CheckpointError(f"{path}: lists no {', '.join(missing)}; not a complete classifier checkpoint")
    return manifest, listed


def is_plain_name(name) -> bool:
    """Whether ``name`` names an entry of a folder and nothing else: no path, no parent, valid Unicode."""
    return (isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")
            and not unicode_problem(name))


def _sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except PermissionError:
        read_checkpoint_file(path)  # raises the CheckpointError that names the permission problem
        raise


def load_classifier(folder: str | Path, inference: str | None = None) -> TaxonomyClassifier:
    """The verified checkpoint; ``inference`` overrides the backend saved in its configuration.

    Everything is read under the checkpoint's shared lock, the encoder included, so a save that swaps
    the folder meanwhile waits, and what was checked is what is loaded.
    """
    folder = Path(folder)
    if inference is not None:
        check_inference(inference)
    recover_folder(folder)
    with checkpoint_lock(folder, shared=True):
        if not folder.is_dir():
            raise CheckpointError(f"{folder}: no classifier checkpoint folder")
        manifest = verify_checkpoint(folder)
        model = _read_model(folder, manifest, inference)
    if model.config.inference == "onnx-int8" and model.onnx_int8 is None:
        model.onnx_int8 = _add_onnx_int8(folder, model, manifest)
    return model


def _read_model(folder: Path, manifest: dict, inference: str | None) -> TaxonomyClassifier:
    try:
        values = json.loads(_checked_bytes(folder / "classifier.json", manifest))
        label_map = LabelMap.from_json(json.loads(_checked_bytes(folder / "label_map.json", manifest)))
        heads = load(_checked_bytes(folder / "heads.safetensors", manifest))
        model = TaxonomyClassifier.from_state(heads, values, label_map, folder)
        model.training_metrics = json.loads(_checked_bytes(folder / "training_metrics.json", manifest))
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, SafetensorError) as exc:  # well-formed bytes, bad content
        raise CheckpointError(f"{folder}: not a readable classifier checkpoint ({brief(exc)})") from None
    model.config.inference = inference or model.config.inference
    if INT8_CALIBRATION in manifest["files"]:
        model.int8_calibration = load(_checked_bytes(folder / INT8_CALIBRATION, manifest))
    elif model.config.inference == "torch-int8":
        raise CheckpointError(f"{folder}: no {INT8_CALIBRATION}, which inference 'torch-int8' needs; training "
                              "records it (this checkpoint is older): train it again, or serve it with torch or "
                              "onnx-int8")
    openvino = [name for name in (OPENVINO_XML, OPENVINO_WEIGHTS) if name in manifest["files"]]
    if len(openvino) == 1:  # written together: one alone was removed from the manifest
        missing = ({OPENVINO_XML, OPENVINO_WEIGHTS} - set(openvino)).pop()
        raise CheckpointIntegrityError(f"{folder / missing}: not in the manifest beside {openvino[0]}; the "
                                       "checkpoint was edited")
    if openvino and model.config.inference == "openvino-int8":
        model.openvino_int8 = tuple(_checked_bytes(folder / name, manifest) for name in openvino)
    elif not openvino and model.config.inference == "openvino-int8":
        raise CheckpointError(f"{folder}: no {OPENVINO_XML}, which inference 'openvino-int8' needs; training "
                              "with inference=openvino-int8 makes it: train it again so, add it from its training "
                              "texts (checkpoint.add_openvino_int8), or serve it with torch, onnx-int8 or torch-int8")
    if model.config.inference == "onnx-int8" and ONNX_INT8 in manifest["files"]:
        model.onnx_int8 = _checked_bytes(folder / ONNX_INT8, manifest)
    model.encoder  # noqa: B018 - loaded now, under the lock, from the files just verified
    return model


def _checked_bytes(path: Path, manifest: dict) -> bytes:
    """The file's bytes, checked against the manifest: the bytes used are the bytes checked."""
    data = read_checkpoint_file(path)
    if hashlib.sha256(data).hexdigest() != manifest["files"][path.name]:
        raise CheckpointIntegrityError(f"{path}: checksum mismatch; the checkpoint is corrupt or was edited")
    return data


def _add_onnx_int8(folder: Path, model: TaxonomyClassifier, manifest: dict) -> bytes:
    """The int8 export of a checkpoint that has none: made once, added to the folder, read back checked."""
    try:
        add_onnx_int8(folder, model, manifest)
    except OSError as exc:  # a read-only model store: serve the export from memory, made again next load
        log.warning("%s: cannot add %s (%s); using it unsaved", folder, ONNX_INT8, exc)
        return model.export_onnx_int8()
    with checkpoint_lock(folder, shared=True):
        return _checked_bytes(folder / ONNX_INT8, _read_manifest(folder / MANIFEST)[0])
