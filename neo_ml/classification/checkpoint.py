"""Classifier checkpoint folders (``models/classification/<version>/``), written atomically, verified on load.

A folder holds the encoder (``model.safetensors``, ``config.json``, tokenizer
files with ``vocab.txt``), ``heads.safetensors`` (lexical and semantic
weights, thresholds), ``label_map.json``, ``classifier.json`` (fusion weight,
calibration, configuration, vocabulary), ``training_metrics.json`` and
``manifest.json`` with the sha256 of every other file plus provenance.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from safetensors.numpy import load_file, save_file

from neo_ml.checkpoints import file_sha256, package_versions, recover_folder, staging_folder, swap_in_folder
from neo_ml.classification.model import TaxonomyClassifier
from neo_ml.data.text import LabelMap
from neo_ml.errors import CheckpointError, CheckpointIntegrityError

MANIFEST = "manifest.json"


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
        files = {p.name: file_sha256(p) for p in sorted(staging.iterdir()) if p.is_file()}
        manifest = {"files": files, "data_checksum": data_checksum, "package_versions": package_versions(),
                    "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        swap_in_folder(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def verify_checkpoint(folder: Path) -> dict:
    """The manifest, after checking every listed file's sha256; a file it does not list is refused too."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{folder}: no {MANIFEST}; not a classifier checkpoint")
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = dict(manifest["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointIntegrityError(f"{manifest_path}: unreadable manifest ({exc})") from exc
    present = {p.name for p in folder.iterdir() if p.name != MANIFEST}
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise CheckpointIntegrityError(f"{folder / unlisted[0]}: not in the manifest; the checkpoint was edited")
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointIntegrityError(f"{path}: listed in the manifest but missing")
        if file_sha256(path) != digest:
            raise CheckpointIntegrityError(f"{path}: checksum mismatch; the checkpoint is corrupt or was edited")
    return manifest


def load_classifier(folder: str | Path) -> TaxonomyClassifier:
    folder = Path(folder)
    recover_folder(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no classifier checkpoint folder")
    verify_checkpoint(folder)
    values = json.loads((folder / "classifier.json").read_text())
    label_map = LabelMap.from_json(json.loads((folder / "label_map.json").read_text()))
    model = TaxonomyClassifier.from_state(load_file(str(folder / "heads.safetensors")), values, label_map, folder)
    model.training_metrics = json.loads((folder / "training_metrics.json").read_text())
    return model
