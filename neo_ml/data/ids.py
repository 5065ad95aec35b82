"""External string ids <-> contiguous indices, one ``IdMap`` per side (users, items)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def _natural_order(ids) -> list[str]:
    """Sorted ids; numerically when every id is an integer, so '10' follows '9'."""
    ids = sorted({str(i) for i in ids})
    if all(i.lstrip("-").isdigit() for i in ids):
        return sorted(ids, key=int)
    return ids


@dataclass(frozen=True)
class IdMap:
    """External string ids <-> contiguous indices 0..n-1."""

    ids: tuple[str, ...]

    @classmethod
    def from_ids(cls, ids) -> IdMap:
        return cls(tuple(_natural_order(ids)))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {key: i for i, key in enumerate(self.ids)}
            object.__setattr__(self, "_index", cached)
        return cached

    def to_dict(self) -> dict[str, int]:
        return dict(self.index)

    def encode(self, ids) -> np.ndarray:
        """Indices of known ids; raises KeyError naming the first unknown one."""
        index = self.index
        return np.fromiter((index[str(i)] for i in ids), dtype=np.int64)


def build_id_maps(interactions: pd.DataFrame) -> tuple[IdMap, IdMap]:
    return IdMap.from_ids(interactions["user_id"]), IdMap.from_ids(interactions["item_id"])
