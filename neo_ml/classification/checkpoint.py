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
import tempfile
from pathlib import Path

from safetensors.numpy import load_file, save_file

from neo_ml.checkpoints import file_sha256, package_versions
from neo_ml.classification.model import TaxonomyClassifier
from neo_ml.data.text import LabelMap
from neo_ml.errors import CheckpointError

MANIFEST = "manifest.json"


def save_classifier(model: TaxonomyClassifier, folder: str | Path, metrics: dict | None = None,
                    data_checksum: str | None = None) -> Path:
    """Write the checkpoint beside ``folder`` and swap it in; a failure leaves the old one intact."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    staging.chmod(0o755)
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
        retired = None
        if folder.exists():
            retired = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            folder.rename(retired)
        staging.rename(folder)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def verify_checkpoint(folder: Path) -> dict:
    """The manifest, after checking every listed file's sha256."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{folder}: no {MANIFEST}; not a classifier checkpoint")
    manifest = json.loads(manifest_path.read_text())
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{path}: listed in the manifest but missing")
        if file_sha256(path) != digest:
            raise CheckpointError(f"{path}: checksum mismatch; the checkpoint is corrupt or was edited")
    return manifest


def load_classifier(folder: str | Path) -> TaxonomyClassifier:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no classifier checkpoint folder")
    verify_checkpoint(folder)
    values = json.loads((folder / "classifier.json").read_text())
    label_map = LabelMap.from_json(json.loads((folder / "label_map.json").read_text()))
    model = TaxonomyClassifier.from_state(load_file(str(folder / "heads.safetensors")), values, label_map, folder)
    model.training_metrics = json.loads((folder / "training_metrics.json").read_text())
    return model
