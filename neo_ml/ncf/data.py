"""Training data for the recommender: MovieLens-100k, an interactions JSON file or a database, with provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from neo_ml.data import db as database
from neo_ml.data.corpora import ML100K_CHECKSUM, load_movielens_100k
from neo_ml.data.interactions import HeldOutCase, interactions_checksum, read_interactions_json
from neo_ml.errors import NeoMLError, brief
from neo_ml.files import file_sha256


@dataclass
class TrainingData:
    interactions: pd.DataFrame
    source: str
    checksum: str
    hold_out_test: bool
    held_out_test: list[HeldOutCase] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The source as checkpoints and output show it: a database URL without its password."""
        return database.redact_url(self.source) if database.is_database_url(self.source) else self.source


def load_training_data(spec: str) -> TrainingData:
    """``ml-100k``, a JSON file, or a database URL -> interactions with their provenance."""
    if spec == "ml-100k":
        return TrainingData(load_movielens_100k(), "ml-100k", ML100K_CHECKSUM, hold_out_test=True)
    if spec.endswith(".json") or Path(spec).suffix == ".json":
        dataset = read_interactions_json(spec)
        return TrainingData(dataset.interactions, str(spec), file_sha256(spec), hold_out_test=False,
                            held_out_test=dataset.held_out_test)
    if database.is_database_url(spec):
        frame = database.read_interactions(database.connect(spec, create=False))
        return TrainingData(frame, spec, interactions_checksum(frame), hold_out_test=False)
    raise NeoMLError(f"--data {brief(spec)}: expected 'ml-100k', a .json file or a database URL")
