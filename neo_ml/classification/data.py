"""Training and test texts for the classifier: a published corpus or a classification JSON file."""

from __future__ import annotations

import random
from pathlib import Path
from typing import NamedTuple

from neo_ml.data.corpora import TEXT_CHECKSUMS, TEXT_CORPORA, load_text_corpus
from neo_ml.data.text import LabeledText, read_classification_json
from neo_ml.errors import NeoMLError, brief
from neo_ml.files import file_sha256

CORPORA = [*TEXT_CORPORA, "20ng-dewey"]


class TextData(NamedTuple):
    train: list[LabeledText]
    test: list[LabeledText] | None  # None: a JSON file, which has no test file
    checksum: str


def load_text_data(spec: str) -> TextData:
    """A corpus name (its train and test files) or a JSON file (training samples only)."""
    if spec in CORPORA:
        train, test = load_text_corpus(spec)
        stem = TEXT_CORPORA["20ng" if spec == "20ng-dewey" else spec]
        return TextData(train, test, TEXT_CHECKSUMS[f"{stem}-train.tab"])
    if Path(spec).suffix == ".json":
        return TextData(read_classification_json(spec).samples, None, file_sha256(spec))
    raise NeoMLError(f"--data {brief(spec)}: expected one of {CORPORA} or a .json file")


def hold_out_and_sample(data: TextData, train_samples: int = 0, test_samples: int = 0,
                        seed: int = 0) -> tuple[list[LabeledText], list[LabeledText]]:
    """(train, test): a JSON file's seeded fifth held out as its test set, then seeded random subsets
    of ``train_samples`` and ``test_samples`` (0: all)."""
    rng = random.Random(seed)
    train, test = list(data.train), data.test
    if test is None:
        rng.shuffle(train)
        train, test = train[len(train) // 5:], train[:len(train) // 5]
    train = rng.sample(train, train_samples) if 0 < train_samples < len(train) else train
    test = rng.sample(test, test_samples) if 0 < test_samples < len(test) else test
    return train, test


def median_length_text(samples: list[LabeledText]) -> str:
    """The text of median length in words: the document single-request latency is measured on."""
    texts = sorted((text for text, _ in samples), key=lambda text: len(text.split()))
    return texts[len(texts) // 2]
