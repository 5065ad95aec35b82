"""``NCFConfig``: every knob of an NCF training run, checked once, in ``__post_init__``.

It is the one definition: the command's flags (``commands.train_ncf``, through
transformers' ``HfArgumentParser``), the pipeline YAML's ``ncf`` keys, the
torchrun arguments (``ncf.run.config_arguments``) and the checkpoint's
``config`` all come from its fields, so a value is refused with the same
message wherever it was set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from neo_ml.devices import check_device_name
from neo_ml.errors import InvalidRequestError, brief
from neo_ml.ncf.model import ARCHITECTURES
from neo_ml.serving import ConfigMixin, check_count, check_number, config_field

SELECT_METRICS = ("ndcg@10", "hr@10", "ndcg@10_full", "hr@10_full")


@dataclass
class NCFConfig(ConfigMixin):
    """Every knob of a training run; saved into the checkpoint as plain values."""

    architecture: str = config_field("neumf", " | ".join(ARCHITECTURES))
    embedding_dim: int = config_field(64, "user and item embedding width")
    hidden_layers: list[int] = config_field([128, 64, 32], "MLP tower widths")
    gmf_dim: int | None = config_field(None, "neumf: the GMF embedding width (default: embedding_dim)")
    dropout: float = config_field(0.0, "dropout in the MLP tower, 0 <= p < 1")
    history_length: int = config_field(5, "latest items added to the user vector; 0 = the plain model")
    epochs: int = config_field(20, "most epochs; the best on validation is kept")
    batch_size: int = config_field(1024, "positive and negative pairs per step")
    learning_rate: float = config_field(2e-3, "Adam learning rate", aliases=["--lr"])
    weight_decay: float = config_field(0.0, "Adam weight decay, >= 0")
    num_negatives: int = config_field(4, "sampled negatives per positive")
    patience: int = config_field(3, "epochs without improvement before stopping")
    select_metric: str = config_field("ndcg@10", "validation metric that picks the epoch: "
                                                   + " | ".join(SELECT_METRICS))
    seed: int = config_field(42, "seed of initialisation, shuffling and negatives")
    threads: int | None = config_field(None, "torch CPU threads per process (default: torch's choice)")
    device: str | None = config_field(None, "auto, cpu, cuda or cuda:N (default: CUDA when present)")
    sparse: bool = config_field(False, "sparse embedding gradients with SparseAdam (large catalogues)")

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise InvalidRequestError(f"architecture must be one of {', '.join(sorted(ARCHITECTURES))}, "
                                      f"got {brief(self.architecture)}")
        if self.select_metric not in SELECT_METRICS:
            raise InvalidRequestError(f"select_metric must be one of {', '.join(SELECT_METRICS)}, "
                                      f"got {brief(self.select_metric)}")
        for name in ("embedding_dim", "epochs", "batch_size", "num_negatives", "patience"):
            check_count(getattr(self, name), name)
        for name in ("history_length", "seed"):
            check_count(getattr(self, name), name, least=0)
        for name in ("gmf_dim", "threads"):
            if getattr(self, name) is not None:
                check_count(getattr(self, name), name)
        hidden = self.hidden_layers
        if isinstance(hidden, str | bytes) or not isinstance(hidden, list | tuple) or not hidden:
            raise InvalidRequestError(f"hidden_layers must be a list of positive widths, got {brief(hidden)}")
        self.hidden_layers = [check_count(width, "hidden_layers") for width in hidden]
        check_number(self.learning_rate, "learning_rate")
        _check_range(self.dropout, "dropout", 1.0, "a number with 0 <= dropout < 1")
        _check_range(self.weight_decay, "weight_decay", math.inf, "a finite number >= 0")
        if not isinstance(self.sparse, bool):
            raise InvalidRequestError(f"sparse must be true or false, got {brief(self.sparse)}")
        if self.device is not None:
            check_device_name(self.device)


def _check_range(value, name: str, below: float, wanted: str) -> None:
    """``value`` must be a number (not a bool) with 0 <= value < ``below``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < below:
        raise InvalidRequestError(f"{name} must be {wanted}, got {brief(value)}")
