"""Training data for the recommender: MovieLens-100k, an interactions JSON file or a database, with provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from neo_ml.data import db as database
from neo_ml.data.corpora import ML100K_CHECKSUM, load_movielens_100k, movielens_item_texts
from neo_ml.data.interactions import HeldOutCase, interactions_checksum, read_interactions_json, resource_texts
from neo_ml.errors import NeoMLError, brief
from neo_ml.files import file_sha256
from neo_ml.sentence_encoder import text_vectors


@dataclass
class TrainingData:
    interactions: pd.DataFrame
    source: str
    checksum: str
    hold_out_test: bool
    held_out_test: list[HeldOutCase] = field(default_factory=list)
    item_texts: dict[str, str] = field(default_factory=dict)  # item_id -> the text its item vector reads

    @property
    def name(self) -> str:
        """The source as checkpoints and output show it: a database URL without its password."""
        return database.redact_url(self.source) if database.is_database_url(self.source) else self.source


def load_training_data(spec: str) -> TrainingData:
    """``ml-100k``, a JSON file, or a database URL -> interactions with their provenance."""
    if spec == "ml-100k":
        return TrainingData(load_movielens_100k(), "ml-100k", ML100K_CHECKSUM, hold_out_test=True,
                            item_texts=movielens_item_texts())
    if spec.endswith(".json") or Path(spec).suffix == ".json":
        dataset = read_interactions_json(spec)
        return TrainingData(dataset.interactions, str(spec), file_sha256(spec), hold_out_test=False,
                            held_out_test=dataset.held_out_test, item_texts=resource_texts(dataset.resources))
    if database.is_database_url(spec):
        engine = database.connect(spec, create=False)
        frame = database.read_interactions(engine)
        return TrainingData(frame, spec, interactions_checksum(frame), hold_out_test=False,
                            item_texts=resource_texts(database.read_resources(engine)))
    raise NeoMLError(f"--data {brief(spec)}: expected 'ml-100k', a .json file or a database URL")


def item_text_vectors(data: TrainingData, item_ids) -> np.ndarray | None:
    """The sentence embedding of each item's text, in ``item_ids`` order (zeros where it has none), or None
    when the data holds no texts."""
    if not data.item_texts:
        return None
    return text_vectors([data.item_texts.get(item, "") for item in item_ids])
