"""NCF checkpoints: the seed's keys plus what a served model and a reproducible run need.

Only tensors, strings, numbers, lists and dicts are stored, so the file
loads with ``torch.load(path, weights_only=True)``: nothing in it can run
code. ``<file>.sha256`` beside it holds its SHA-256, checked before the
file is unpickled.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from neo_ml.data.ids import IdMap
from neo_ml.errors import CheckpointError, NCFModelNotFoundError, brief
from neo_ml.files import package_versions, read_verified, write_verified
from neo_ml.ncf.model import build_model

if TYPE_CHECKING:
    from neo_ml.data.splits import LeaveOneOutSplit
    from neo_ml.ncf.train import TrainResult

FORMAT_VERSION = 1
REQUIRED_KEYS = ("model_state_dict", "user_id_map", "item_id_map", "num_users", "num_items",
                 "embedding_dim", "hidden_layers", "training_metrics", "architecture", "config")


def save_ncf_checkpoint(path: str | Path, model, config: dict, users: IdMap, items: IdMap,
                        known_pairs: np.ndarray, training_metrics: dict, training_history: list,
                        data_checksum: str, data_source: str) -> Path:
    """Write the checkpoint and its checksum atomically: a failed save never replaces a good file.

    ``known_pairs`` are every (user, item) index pair of the input data, time
    ordered within each user; they give the served model each user's seen
    items, latest history and the popularity used for cold start.
    """
    order = np.argsort(known_pairs[:, 0], kind="stable")
    pairs = known_pairs[order]
    indptr = np.searchsorted(pairs[:, 0], np.arange(len(users) + 1))
    payload = {
        "format_version": FORMAT_VERSION,
        "model_state_dict": model.state_dict(),
        "user_id_map": users.to_dict(),
        "item_id_map": items.to_dict(),
        "num_users": len(users),
        "num_items": len(items),
        "embedding_dim": config["embedding_dim"],
        "hidden_layers": list(config["hidden_layers"]),
        "training_metrics": training_metrics,
        "training_history": training_history,
        "architecture": config["architecture"],
        "config": config,
        "data_checksum": data_checksum,
        "data_source": data_source,
        "package_versions": package_versions(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "user_items_indptr": torch.as_tensor(indptr, dtype=torch.int64),
        "user_items": torch.as_tensor(pairs[:, 1], dtype=torch.int64),
        "item_popularity": torch.as_tensor(np.bincount(pairs[:, 1], minlength=len(items)),
                                           dtype=torch.int64),
    }
    return write_verified(path, lambda tmp: torch.save(payload, tmp))


def save_trained(path: str | Path, result: TrainResult, split: LeaveOneOutSplit, metrics: dict,
                 data_checksum: str, data_source: str) -> Path:
    """``save_ncf_checkpoint`` of a training run: its model (on the CPU), config and history, and the
    split's id maps and every known pair."""
    return save_ncf_checkpoint(path, result.model.cpu(), result.config.to_dict(), split.users, split.items,
                               split.all_pairs(), metrics, result.history, data_checksum, data_source)


def load_ncf_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict: SHA-256 verified, loaded with ``weights_only=True``, checked for the required keys."""
    path = Path(path)
    try:
        found = path.is_file()
    except OSError as error:  # e.g. a name longer than the file system allows
        raise CheckpointError(f"{brief(str(path))}: cannot be a checkpoint path ({error.strerror})") from None
    if not found:
        raise NCFModelNotFoundError(path)
    data = read_verified(path)
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{path}: not a readable NCF checkpoint ({exc})") from exc
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: missing keys {missing}")
    return checkpoint


def model_from_checkpoint(checkpoint: dict):
    """Rebuild the model the checkpoint describes and load its weights."""
    # A SASRec saved before the repeat penalty or the long-term taste existed holds neither; its config
    # lacks the fields.
    config = {"repeat_penalty": False, "taste_length": 0} | dict(checkpoint["config"])
    state = checkpoint["model_state_dict"]
    text = state.get("text_projection.0.weight")  # the text path's width: the sentence embeddings'
    model = build_model(checkpoint["architecture"], checkpoint["num_users"], checkpoint["num_items"],
                        **{k: v for k, v in config.items() if k != "architecture"},
                        text_dim=0 if text is None else int(text.shape[1]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit the described model: {exc}") from exc
    return model.eval()
