"""Resources a served checkpoint has no row for, scored from their text (``NCFService.add_resources``, or
the database's ``resources`` table).

Each text goes once through the sentence encoder the model was trained with and its text path
(``ncf.text_path``): the vector the model would have given the item had it been in the catalogue without
interactions. The vectors live beside the checkpoint's items, in a table that is searched exactly
(one matrix product) and merged with the retrieval's best, so the checkpoint's index is never rebuilt.

Readers take one immutable ``Snapshot`` per call; ``add`` builds the next one and swaps it in under a
lock, so a request sees either the catalogue before an addition or after it, never half of it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from neo_ml.sentence_encoder import TEXT_VECTORS_MAX_LENGTH, embed, load_encoder


@dataclass(frozen=True)
class Snapshot:
    ids: np.ndarray  # object array of resource ids, in the order they were added
    rows: dict[str, int]  # id -> row of ``vectors``
    vectors: torch.Tensor  # (resources, embedding width): the model's item vector of each

    def __len__(self) -> int:
        return len(self.ids)


class TextResources:
    """The resources added after training, for one model with a text path."""

    def __init__(self, model, encoder=None):
        self.model = model
        self.tokenizer, self.encoder = load_encoder(encoder)  # loaded up front: a first score must be quick
        width = model.item_embedding.embedding_dim
        device = model.item_embedding.weight.device
        self.snapshot = Snapshot(np.array([], dtype=object), {}, torch.zeros(0, width, device=device))
        self._lock = threading.Lock()

    @torch.no_grad()
    def vectors_of(self, texts: list[str]) -> torch.Tensor:
        """The model's item vector for each text (an empty text is a zero sentence embedding, as in training)."""
        sentences = np.zeros((len(texts), self.model.item_text.shape[1]), dtype=np.float32)
        present = [n for n, text in enumerate(texts) if text.strip()]
        if present:
            sentences[present] = embed([texts[n] for n in present], self.tokenizer, self.encoder,
                                       max_length=TEXT_VECTORS_MAX_LENGTH, batch_size=64)
        sentences = torch.as_tensor(sentences, device=self.model.item_text.device)
        return self.model.text_projection(sentences)

    def add(self, texts: dict[str, str]) -> int:
        """Add the resources of ``texts`` (id -> text) not already added; returns how many were new."""
        with self._lock:
            before = self.snapshot
            new = [(item, text) for item, text in texts.items() if item not in before.rows]
            if not new:
                return 0
            vectors = self.vectors_of([text for _, text in new])
            ids = np.concatenate([before.ids, np.array([item for item, _ in new], dtype=object)])
            rows = {**before.rows, **{item: len(before) + n for n, (item, _) in enumerate(new)}}
            self.snapshot = Snapshot(ids, rows, torch.cat([before.vectors, vectors]))
            return len(new)
