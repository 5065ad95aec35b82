"""The text path of a trained sequence model: an MLP from an item's sentence embedding to an item vector,
for the items without an id vector (a resource no one had taken at training time).

Fitted after training, against the frozen model: the hidden state at every training position predicts
the next item, over every item with an id, where a share ``id_dropout`` of the items, drawn anew at each
step, stands in as its text's projection (DropoutNet, Volkovs et al. 2017). The id vectors and the encoder
do not change, so warm figures are exactly those of the model without text; mixing both kinds in one
softmax keeps the projections on the id vectors' scale, so a new item neither floods nor vanishes from the
lists. On the new-resource protocol's validation users (``bench.new_items``), scoring the dropped targets
only lifted their sampled HR@10 to 0.83 and took warm users' full HR@10 from 0.21 to 0.001: the MLP learned
to outscore every id vector.
"""
from __future__ import annotations

import time
from copy import deepcopy

import numpy as np
import torch
from torch import nn

from neo_ml.data.splits import LeaveOneOutSplit
from neo_ml.ncf.config import NCFConfig
from neo_ml.ncf.sampling import SequenceWindows, sequence_batches

TEXT_LEARNING_RATE = 1e-3
TEXT_BATCH_POSITIONS = 1024


def fit_text_path(model, split: LeaveOneOutSplit, item_text: np.ndarray, config: NCFConfig) -> float:
    """Give ``model`` (trained, a sequence model) a text path fitted on ``split.train``; ``item_text`` is each
    item's sentence embedding, (num_items, width). Returns the seconds it took."""
    started = time.perf_counter()
    device = model.item_embedding.weight.device
    has_id = np.bincount(split.train[:, 1], minlength=split.num_items) > 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model.add_text_path(item_text.shape[1])
    model.to(device).set_item_text(item_text, has_id)
    model.eval()
    hidden, targets = _training_states(model, split, config)
    ids = model.item_embedding.weight[:split.num_items].detach()
    texts, has_id = model.item_text[:split.num_items], model.has_id[:split.num_items]
    projection = model.text_projection.train()
    optimizer = torch.optim.Adam(projection.parameters(), lr=TEXT_LEARNING_RATE)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    for _ in range(config.text_epochs):
        order = torch.randperm(len(hidden), generator=generator, device=device)
        for start in range(0, len(order), TEXT_BATCH_POSITIONS):
            rows = order[start:start + TEXT_BATCH_POSITIONS]
            as_text = torch.rand(len(ids), generator=generator, device=device) < config.id_dropout
            table = torch.where((has_id & ~as_text).unsqueeze(-1), ids, projection(texts))
            # an item no one took is not in the catalogue yet: ranking against it would teach the MLP that
            # such texts are never taken
            logits = (hidden[rows] @ table.T).masked_fill(~has_id, -torch.inf)
            loss = nn.functional.cross_entropy(logits, targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()  # and the table cached with the unfitted projection goes
    return time.perf_counter() - started


@torch.no_grad()
def _training_states(model, split: LeaveOneOutSplit, config: NCFConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen model's hidden state at every predicted training position, and the item that followed."""
    windows = SequenceWindows.from_pairs(split.train, config.items_read, pad=split.num_items,
                                         stride=config.window_stride or config.history_length)
    device = model.item_embedding.weight.device
    states, followers = [], []
    for users, inputs, targets, _ in sequence_batches(windows, 256, config.seed, 0, split.num_items):
        inputs, targets = torch.as_tensor(inputs, device=device), torch.as_tensor(targets, device=device)
        hidden = model.encode(inputs)
        if model.user is not None:
            hidden = hidden + model.user(torch.as_tensor(users, device=device)).unsqueeze(1)
        targets = targets[:, inputs.shape[1] - hidden.shape[1]:]
        window, position = (targets != split.num_items).nonzero(as_tuple=True)
        states.append(hidden[window, position])
        followers.append(targets[window, position])
    return torch.cat(states), torch.cat(followers)


def without_text_path(model):
    """A copy of ``model`` that reads no text: every item is its id vector (an item without one keeps the
    untrained vector it was built with), as if trained with ``item_text`` off; the training is the same."""
    copy = deepcopy(model)
    copy.text_projection = None
    copy.eval()
    return copy
