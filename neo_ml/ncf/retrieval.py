"""Candidate retrieval for large catalogues: the first stage of two-stage recommendation.

Scoring every item with the MLP tower costs about 10k multiply-adds per item,
about 0.3 s for a million items on 2 cores. The GMF side of NeuMF (and all of
GMF) is an inner product, ``(u * w) . v_i``. The MLP side is estimated to
first order: its gradient with respect to the item's first-layer projection
``W_i v_i``, taken at the mean item, dotted with each item's projection
(``NeuMF.retrieval_queries``). A search over these item vectors finds the
items the estimate rates highest, and the full model scores only those.

``MatmulIndex`` is exact (one matrix product and a top-k). ``IVFIndex`` is
FAISS's inverted file: k-means cells over the item vectors, and a query
scans only the ``nprobe`` cells nearest to it.

``ItemSearch`` is the whole search a served model runs: exact scoring of every
item, or the two stages (retrieve ``candidates`` items by the estimate, search
a second time around the best of them where the estimate is not exact, score
only those with the full model).
"""

from __future__ import annotations

import time

import numpy as np
import torch


class MatmulIndex:
    """Exact maximum inner product search: every item scored by one matrix product."""

    name = "matmul"

    def __init__(self, items: np.ndarray):
        self.items = torch.as_tensor(np.ascontiguousarray(items, dtype=np.float32))
        self.build_seconds = 0.0

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        scores = torch.as_tensor(queries, dtype=torch.float32) @ self.items.T
        return torch.topk(scores, min(k, len(self.items)), dim=1).indices.numpy()


class IVFIndex:
    """Approximate maximum inner product search with FAISS ``IndexIVFFlat``.

    Inner products become distances first: each item gets one more coordinate,
    sqrt(M^2 - |x|^2) with M the largest item norm, and each query a 0 there,
    so |q - x|^2 = |q|^2 + M^2 - 2 q.x and the nearest items are those of the
    highest inner product. k-means cells then hold items that are near each
    other, which an inner-product IVF over vectors of unequal norms does not
    give (its recall here was 0.03-0.39). ``cells`` defaults to about
    4 sqrt(items); k-means trains on at most 64 vectors per cell; ``nprobe``
    cells are scanned per query.
    """

    name = "ivf"

    def __init__(self, items: np.ndarray, cells: int | None = None, nprobe: int = 32, seed: int = 0):
        import faiss

        started = time.perf_counter()
        items = np.ascontiguousarray(items, dtype=np.float32)
        squared = np.einsum("ij,ij->i", items, items)
        items = np.hstack([items, np.sqrt(squared.max() - squared)[:, None]]).astype(np.float32)
        cells = cells or max(1, int(4 * np.sqrt(len(items))))
        self.index = faiss.IndexIVFFlat(faiss.IndexFlatL2(items.shape[1]), items.shape[1], cells)
        sample = np.random.default_rng(seed).choice(len(items), min(len(items), 64 * cells), replace=False)
        self.index.cp.seed = seed
        self.index.train(items[np.sort(sample)])
        self.index.add(items)
        self.index.nprobe = min(nprobe, cells)
        self.build_seconds = time.perf_counter() - started

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        padded = np.hstack([queries, np.zeros((len(queries), 1), dtype=np.float32)])
        _, found = self.index.search(padded, k)
        return found  # -1 where a query's cells hold fewer than k items


INDEXES = {"matmul": MatmulIndex, "ivf": IVFIndex}


def build_index(kind: str, items: np.ndarray, **options):
    if kind not in INDEXES:
        raise ValueError(f"unknown retrieval index {kind!r}; choose from {sorted(INDEXES)}")
    return INDEXES[kind](items, **options)


RETRIEVAL_CHOICES = ("auto", "exact", "ivf", "matmul")
TWO_STAGE_ABOVE = 20_000  # items; up to here exact scoring takes about 10 ms or less
REFINE_AROUND = 10  # best candidates whose mean item the second search is taken around


def hide_repeats(candidates: torch.Tensor, logits: torch.Tensor) -> None:
    """Set the logit of each candidate's second and later appearance in its row to -inf."""
    ordered = torch.sort(candidates, dim=1, stable=True)
    repeat = torch.zeros_like(candidates, dtype=torch.bool)
    repeat.scatter_(1, ordered.indices[:, 1:], ordered.values[:, 1:] == ordered.values[:, :-1])
    logits[repeat] = -torch.inf


class ItemSearch:
    """The best items of a model for a batch of users: exact, or two-stage over an index.

    ``kind`` "auto" is exact up to ``TWO_STAGE_ABOVE`` items and "ivf" beyond.
    """

    def __init__(self, model, kind: str = "auto", candidates: int = 200, nprobe: int = 128):
        if kind == "auto":
            kind = "ivf" if model.num_items > TWO_STAGE_ABOVE else "exact"
        self.model, self.candidates = model, candidates
        self.index = None
        if kind != "exact":
            with torch.no_grad():
                items = model.retrieval_items().cpu().numpy()
            self.index = build_index(kind, items, nprobe=nprobe) if kind == "ivf" else build_index(kind, items)

    @torch.no_grad()
    def best(self, users: torch.Tensor, history: torch.Tensor | None, masked: list[list[int]],
             top_k: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per user, the item indices and logits of its ``top_k`` best items, best first, leaving out
        the user's ``masked`` items."""
        if self.index is None:
            candidates = None
            logits = self.model.score_all_items(users, history)
        else:
            vectors = self.model.user_vectors(users, history)
            # Items scored below their inner product (read ones) may leave the top: fetch as many more.
            lowered = history.shape[1] if history is not None and self.model.lowers_read_items else 0
            wanted = min(max(self.candidates, top_k) + max(map(len, masked)) + lowered, self.model.num_items)
            candidates, logits = self._retrieve(vectors, wanted)
            if not self.model.retrieval_is_exact:
                # The MLP side's estimate is taken around the typical item; a second search taken
                # around the user's best candidates finds what the first missed near them.
                best = candidates.gather(1, torch.topk(logits, min(REFINE_AROUND, wanted)).indices)
                more, more_logits = self._retrieve(vectors, wanted, near=best.clamp(min=0))
                candidates, logits = torch.cat([candidates, more], 1), torch.cat([logits, more_logits], 1)
                hide_repeats(candidates, logits)
        ranked = []
        for row, excluded in enumerate(masked):
            scores, items = logits[row], None if candidates is None else candidates[row]
            if excluded:
                hide = torch.as_tensor(excluded, device=scores.device)
                scores[hide if items is None else torch.isin(items, hide)] = -torch.inf
            top = torch.topk(scores, min(top_k, int(torch.isfinite(scores).sum())))
            ranked.append((top.indices if items is None else items[top.indices], top.values))
        return ranked

    def _retrieve(self, vectors, wanted: int, near=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The index's candidates for each user and their logits (-inf where fewer were found)."""
        queries = self.model.retrieval_queries(vectors, near).cpu().numpy()
        device = vectors[0].device
        candidates = torch.as_tensor(self.index.search(queries, wanted), device=device)
        width = candidates.shape[1]
        logits = self.model.score(tuple(v.repeat_interleave(width, dim=0) for v in vectors),
                                  candidates.clamp(min=0).reshape(-1)).view(len(candidates), width)
        logits[candidates < 0] = -torch.inf
        return candidates, logits
