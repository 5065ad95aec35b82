"""The encoder in static int8 on the CPU, compiled by Inductor: the fastest inference backend.

PyTorch 2 export quantisation (``torchao``'s ``prepare_pt2e`` and
``convert_pt2e`` with the x86 Inductor quantiser): weights int8 with one scale
per output channel, activations int8 with scales fixed beforehand from
training texts (static). ``torch.compile`` with frozen weights then runs every
matrix product as a oneDNN int8 kernel and fuses the float work around it
(LayerNorm, GELU, the (de)quantisation steps); attention keeps PyTorch's
fused kernel. The graph is dynamic in batch and length, so it compiles once
(about 20 s on 2 cores, at the first prediction of a process).

The activation scales come from ``calibrate``: the observers' statistics after
the training texts' forward passes, saved in the checkpoint
(``int8-calibration.safetensors``). Training always uses the float encoder;
this is an inference path only.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import numpy as np
import torch
import torch._inductor.config as inductor_config

from neo_ml.errors import NeoMLError
from neo_ml.sentence_encoder import PooledEncoder, embed_batches, quiet_torchao

CALIBRATION_TEXTS = 128  # evenly spaced training texts; 128 gave embeddings at cosine 0.995 to fp32 on 20NG
_OBSERVERS = "activation_post_process_"  # how prepare_pt2e names its observer modules


class CalibrationMismatchError(NeoMLError, ValueError):
    """Saved observer statistics do not fit the encoder graph (another encoder or torchao version)."""


def _quantisation():
    """torchao's PT2E entry points."""
    with quiet_torchao():
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86
    return prepare_pt2e, convert_pt2e, x86


@contextlib.contextmanager
def _without_pooler(model):
    """BERT's pooler is not used by mean pooling. Left in, its tanh is a dead branch on which the x86
    quantiser's pattern matching fails (IndexError in torchao 0.18); the export leaves it out."""
    pooler = getattr(model, "pooler", None)
    if pooler is not None:
        model.pooler = None
    try:
        yield
    finally:
        if pooler is not None:
            model.pooler = pooler


def _example(tokenizer):
    """Two short texts of different lengths: a batch to trace and to compile with."""
    return tokenizer(["an example", "a longer example text"], padding=True, return_tensors="pt")


def _prepared(tokenizer, model) -> torch.fx.GraphModule:
    """The exported encoder + pooling (dynamic in batch and length) with int8 observers inserted."""
    prepare_pt2e, _, x86 = _quantisation()
    if next(model.parameters()).device.type != "cpu":  # the x86 kernels run on the CPU only
        model = copy.deepcopy(model).to("cpu")
    example = _example(tokenizer)
    rows = torch.export.Dim("rows", min=2, max=65536)
    tokens = torch.export.Dim("tokens", min=2, max=model.config.max_position_embeddings)
    with _without_pooler(model), torch.no_grad():
        exported = torch.export.export(PooledEncoder(model).eval(), (example["input_ids"],
                                       example["attention_mask"]), dynamic_shapes=({0: rows, 1: tokens},) * 2)
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    return prepare_pt2e(exported.module(), quantizer)


def _pooled_batches(program):
    """``program`` as ``embed_batches`` calls it; a lone text is paired with a copy, because
    ``torch.compile`` specialises a dimension of size 1 and would compile a second graph for it."""

    def pooled(batch) -> np.ndarray:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        count = len(ids)
        if count == 1:
            ids, mask = ids.repeat(2, 1), mask.repeat(2, 1)
        return program(ids, mask)[:count].float().numpy()

    return pooled


def calibrate(tokenizer, model, texts: list[str], max_length: int, batch_size: int) -> dict[str, np.ndarray]:
    """Observer statistics (activation histograms, weight ranges) after encoding up to
    ``CALIBRATION_TEXTS`` evenly spaced ``texts``: what ``Int8Encoder`` needs besides the encoder."""
    if not texts:
        raise NeoMLError("int8 calibration needs at least one text")
    prepared = _prepared(tokenizer, model)
    sample = texts[::max(1, len(texts) // CALIBRATION_TEXTS)][:CALIBRATION_TEXTS]
    with torch.no_grad():
        embed_batches(sample, tokenizer, _pooled_batches(prepared), model.config.hidden_size, max_length, batch_size)
    return {name: value.detach().cpu().numpy() for name, value in prepared.state_dict().items()
            if name.startswith(_OBSERVERS)}


class Int8Encoder:
    """The encoder quantised with saved ``calibrate`` statistics and compiled by Inductor (about 20 s)."""

    def __init__(self, tokenizer, model, calibration: dict[str, np.ndarray] | None):
        _, convert_pt2e, _ = _quantisation()
        calibration = calibration or {}
        prepared = _prepared(tokenizer, model)
        expected = {name for name in prepared.state_dict() if name.startswith(_OBSERVERS)}
        if set(calibration) != expected:
            raise CalibrationMismatchError(
                f"int8 calibration: {len(calibration)} observer tensors saved, {len(expected)} expected "
                f"(first difference {sorted(set(calibration) ^ expected)[0]!r}); it was made for another encoder "
                "or torchao version: train the checkpoint again")
        prepared.load_state_dict({name: torch.from_numpy(value) for name, value in calibration.items()},
                                 strict=False)
        self.width = model.config.hidden_size
        self.quantised = convert_pt2e(prepared)  # int8 weights, (de)quantisation steps: what Inductor compiles
        self.program = torch.compile(self.quantised, dynamic=True)
        self._pooled = _pooled_batches(self.program)
        # Compiled here, once: frozen weights let Inductor pack the int8 weights for oneDNN (without them the
        # int8 graph ran slower than the compiled fp32 graph, 33 against 38 documents/s). Both settings are
        # process-wide, so predictions, which may run in several threads at once, leave them alone.
        with inductor_config.patch(freezing=True), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="To copy construct from a tensor")  # inductor internals
            self.pooled(_example(tokenizer))

    def pooled(self, batch) -> np.ndarray:
        with torch.no_grad():
            return self._pooled(batch)

    def embed(self, texts: list[str], tokenizer, max_length: int = 256, batch_size: int = 32,
              progress: bool = False) -> np.ndarray:
        """Mean-pooled embeddings, one row per text, batched by length like ``encoder.embed``."""
        return embed_batches(texts, tokenizer, self.pooled, self.width, max_length, batch_size, progress, "pt")
