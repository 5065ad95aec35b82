"""``NCFConfig``: every knob of an NCF training run, checked once, in ``__post_init__``.

It is the one definition: the command's flags (``commands.train_ncf``, through
transformers' ``HfArgumentParser``), the pipeline YAML's ``ncf`` keys, the
torchrun arguments (``ncf.run.config_arguments``) and the checkpoint's
``config`` all come from its fields, so a value is refused with the same
message wherever it was set.
"""

from __future__ import annotations

from dataclasses import dataclass

from neo_ml.devices import check_device_name
from neo_ml.errors import InvalidRequestError, brief
from neo_ml.ncf.model import ARCHITECTURES
from neo_ml.serving import ConfigMixin, check_count, check_number, config_field

SELECT_METRICS = ("ndcg@10", "hr@10", "ndcg@10_full", "hr@10_full")
FULL_SOFTMAX_ITEMS = 50_000  # sasrec ranks every position against the whole catalogue up to here
SAMPLED_SOFTMAX = 512  # beyond it, against this many items drawn per batch
# What a field left as None means, per kind of model: a sequence model trains longer on fewer, longer
# examples. The pointwise values are those the README's NCF figures were measured with.
ARCHITECTURE_DEFAULTS = {
    "pointwise": {"history_length": 5, "dropout": 0.0, "epochs": 20, "batch_size": 1024, "learning_rate": 2e-3,
                  "patience": 3, "taste_length": 0},
    "sasrec": {"history_length": 50, "dropout": 0.2, "epochs": 30, "batch_size": 128, "learning_rate": 5e-3,
               "patience": 5, "taste_length": 200},
}


@dataclass
class NCFConfig(ConfigMixin):
    """Every knob of a training run; saved into the checkpoint as plain values."""

    architecture: str = config_field("sasrec", " | ".join(ARCHITECTURES))
    embedding_dim: int = config_field(64, "user and item embedding width")
    hidden_layers: list[int] = config_field([128, 64, 32], "MLP tower widths (mlp, neumf)")
    gmf_dim: int | None = config_field(None, "neumf: the GMF embedding width (default: embedding_dim)")
    dropout: float | None = config_field(None, "dropout, 0 <= p < 1 (default: the architecture's)")
    history_length: int | None = config_field(None, "latest items the user is read from; 0 = the plain id model "
                                                     "(default: the architecture's)")
    epochs: int | None = config_field(None, "most epochs; the best on validation is kept (default: the "
                                            "architecture's)")
    batch_size: int | None = config_field(None, "pairs (mlp, gmf, neumf) or sequences (sasrec) per step "
                                                "(default: the architecture's)")
    learning_rate: float | None = config_field(None, "Adam learning rate (default: the architecture's)",
                                               aliases=["--lr"])
    weight_decay: float = config_field(0.0, "Adam weight decay, >= 0")
    num_negatives: int = config_field(4, "sampled negatives per positive (mlp, gmf, neumf)")
    patience: int | None = config_field(None, "epochs without improvement before stopping (default: the "
                                              "architecture's)")
    select_metric: str = config_field("ndcg@10", "validation metric that picks the epoch: "
                                                 + " | ".join(SELECT_METRICS))
    num_blocks: int = config_field(2, "sasrec: self-attention blocks")
    num_heads: int = config_field(1, "sasrec: attention heads (must divide embedding_dim)")
    softmax_negatives: int | None = config_field(None, "sasrec: items each position is ranked against; "
                                                       "default: all of them up to "
                                                       f"{FULL_SOFTMAX_ITEMS:,} items, else {SAMPLED_SOFTMAX} sampled")
    taste_length: int | None = config_field(None, "sasrec: latest items read into the long-term taste vector, "
                                                  "beyond the attention window (0: none; default: the "
                                                  "architecture's)")
    taste_dropout: float = config_field(0.3, "sasrec: share of the items left out of each training window's "
                                             "taste, so it is no fingerprint of the readers trained on; 0 <= p < 1")
    user_embedding: bool = config_field(False, "sasrec: add a user id vector (a new user has none)")
    user_dropout: float = config_field(0.0, "sasrec with user_embedding: share of training windows read without "
                                            "their user id vector, as a newcomer is (DropoutNet)")
    item_text: bool = config_field(True, "sasrec: fit a text path after training, where the data has texts: an "
                                         "item with no interactions is served from its text's sentence embedding")
    id_dropout: float = config_field(0.3, "sasrec with item_text: share of the items whose id vector each step "
                                          "of fitting the text path replaces with their text's (DropoutNet)")
    text_epochs: int = config_field(5, "sasrec with item_text: passes over the training positions to fit the "
                                       "text path")
    repeat_penalty: bool = config_field(True, "sasrec: learn a score penalty for the items a user has already "
                                              "read (training data holds no repeats)")
    window_stride: int | None = config_field(None, "sasrec: new targets per training window, at most "
                                                   "history_length; windows of every item read start this many "
                                                   "items apart (default: history_length)")
    seed: int = config_field(42, "seed of initialisation, shuffling and negatives")
    threads: int | None = config_field(None, "torch CPU threads per process (default: torch's choice)")
    device: str | None = config_field(None, "auto, cpu, cuda or cuda:N (default: CUDA when present)")
    sparse: bool = config_field(False, "sparse embedding gradients with SparseAdam (large catalogues; sasrec "
                                       f"then ranks against {SAMPLED_SOFTMAX} sampled items unless told otherwise)")

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise InvalidRequestError(f"architecture must be one of {', '.join(sorted(ARCHITECTURES))}, "
                                      f"got {brief(self.architecture)}")
        defaults = ARCHITECTURE_DEFAULTS["sasrec" if self.is_sequence_model else "pointwise"]
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.select_metric not in SELECT_METRICS:
            raise InvalidRequestError(f"select_metric must be one of {', '.join(SELECT_METRICS)}, "
                                      f"got {brief(self.select_metric)}")
        for name in ("embedding_dim", "epochs", "batch_size", "num_negatives", "patience", "num_blocks", "num_heads",
                     "text_epochs"):
            check_count(getattr(self, name), name)
        for name in ("history_length", "seed", "taste_length"):
            check_count(getattr(self, name), name, least=0)
        for name in ("gmf_dim", "threads", "softmax_negatives", "window_stride"):
            if getattr(self, name) is not None:
                check_count(getattr(self, name), name)
        hidden = self.hidden_layers
        if isinstance(hidden, str | bytes) or not isinstance(hidden, list | tuple) or not hidden:
            raise InvalidRequestError(f"hidden_layers must be a list of positive widths, got {brief(hidden)}")
        self.hidden_layers = [check_count(width, "hidden_layers") for width in hidden]
        check_number(self.learning_rate, "learning_rate")
        check_number(self.dropout, "dropout", "a number with 0 <= dropout < 1", below=1.0, zero_allowed=True)
        check_number(self.user_dropout, "user_dropout", "a number with 0 <= user_dropout < 1", below=1.0,
                     zero_allowed=True)
        check_number(self.taste_dropout, "taste_dropout", "a number with 0 <= taste_dropout < 1", below=1.0,
                     zero_allowed=True)
        check_number(self.id_dropout, "id_dropout", "a number with 0 <= id_dropout < 1", below=1.0,
                     zero_allowed=True)
        check_number(self.weight_decay, "weight_decay", "a finite number >= 0", zero_allowed=True)
        for name in ("sparse", "user_embedding", "repeat_penalty", "item_text"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidRequestError(f"{name} must be true or false, got {brief(getattr(self, name))}")
        if self.is_sequence_model:
            if self.history_length < 1:
                raise InvalidRequestError(f"history_length must be at least 1 for {self.architecture}, "
                                          f"got {self.history_length}")
            if self.window_stride is not None and self.window_stride > self.history_length:
                raise InvalidRequestError(f"window_stride ({self.window_stride}) must be at most history_length "
                                          f"({self.history_length}): targets are predicted in the attention window")
            if self.embedding_dim % self.num_heads:
                raise InvalidRequestError(f"num_heads ({self.num_heads}) must divide embedding_dim "
                                          f"({self.embedding_dim})")
        if self.device is not None:
            check_device_name(self.device)

    @property
    def is_sequence_model(self) -> bool:
        return ARCHITECTURES[self.architecture].sequence_model

    @property
    def items_read(self) -> int:
        """How many of a user's latest items the model reads: its attention window and its taste."""
        return max(self.history_length, self.taste_length) if self.is_sequence_model else self.history_length

    def negatives_for(self, num_items: int) -> int | None:
        """How many items a sequence model ranks each position against: None for all of them. Sparse
        gradients sample by default: a full softmax moves every item's row at every step."""
        wanted = self.softmax_negatives
        if wanted is None and (self.sparse or num_items > FULL_SOFTMAX_ITEMS):
            wanted = SAMPLED_SOFTMAX
        return wanted if wanted is not None and wanted < num_items else None
