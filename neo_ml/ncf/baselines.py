"""Baselines measured in the same harness as the NCF models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# The seed's model: an MLP tower [128, 64, 32] over user and item ids, no history, with the batch size and
# learning rate it was measured at; the rest are the pointwise defaults (``ncf.config.ARCHITECTURE_DEFAULTS``).
SEED_MLP = {"architecture": "mlp", "history_length": 0, "batch_size": 256, "learning_rate": 1e-3}
# The default until 2026-12: NeuMF whose user vectors add the mean embedding of the latest 5 items.
PREVIOUS_DEFAULT = {"architecture": "neumf"}


class PopularityModel(nn.Module):
    """Scores an item by its number of training interactions, the same for every user."""

    history_length = 0

    def __init__(self, train_pairs: np.ndarray, num_items: int):
        super().__init__()
        self.num_items = num_items
        counts = np.bincount(train_pairs[:, 1], minlength=num_items).astype(np.float32)
        self.register_buffer("counts", torch.as_tensor(counts))

    def forward(self, users, items, history=None) -> torch.Tensor:
        return self.counts[items]

    def user_vectors(self, users, history=None):
        return (torch.zeros(len(users), 0, device=self.counts.device),)  # every user is the same

    def score(self, vectors, items) -> torch.Tensor:
        return self.counts[items]

    def score_all_items(self, users, history=None) -> torch.Tensor:
        return self.counts.repeat(len(users), 1)  # a copy: callers mask it in place
