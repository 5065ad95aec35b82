"""Labelled text for the taxonomy classifier: JSON files, label maps and augmentation.

Accepted classification JSON (seed format and the backend's export):

* ``samples``: objects with ``text`` and labels under ``taxonomy_codes`` (seed),
  ``taxonomy_node_ids`` or ``true_labels`` (backend), the first present wins;
  optional ``confidence`` and ``difficulty`` are kept as they are.
* ``metadata`` (``num_samples``, ``num_classes``, ``class_distribution``); the
  backend puts ``class_distribution`` at the top level. These counts are
  informative only: the samples themselves are the truth.

Every error names the file, the record and the field.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neo_ml.data.documents import read_json, records_and_metadata, unicode_problem
from neo_ml.errors import DataFormatError, brief

log = logging.getLogger(__name__)

LABEL_KEYS = ("taxonomy_codes", "taxonomy_node_ids", "true_labels")
LabeledText = tuple[str, list[str]]


@dataclass
class ClassificationDataset:
    samples: list[LabeledText]
    metadata: dict = field(default_factory=dict)
    source: str = "<memory>"

    @property
    def class_distribution(self) -> dict[str, int]:
        return dict(sorted(Counter(label for _, labels in self.samples for label in labels).items()))


def parse_sample(row: Any, source: str, record: int) -> LabeledText:
    if not isinstance(row, dict):
        raise DataFormatError(f"expected an object, got {type(row).__name__}", source=source, record=record)
    text = row.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DataFormatError("expected non-empty text", source=source, record=record, field="text")
    problem = unicode_problem(text)
    if problem:
        raise DataFormatError(problem, source=source, record=record, field="text")
    key = next((k for k in LABEL_KEYS if k in row), None)
    if key is None:
        raise DataFormatError("missing (also looked for 'taxonomy_node_ids', 'true_labels')",
                              source=source, record=record, field="taxonomy_codes")
    labels = row[key]
    if not isinstance(labels, list) or not labels:
        raise DataFormatError("expected a non-empty list of labels", source=source, record=record, field=key)
    for label in labels:
        if not isinstance(label, str) or not label.strip() or unicode_problem(label):
            reason = unicode_problem(label) if isinstance(label, str) and label.strip() else "expected label strings"
            raise DataFormatError(f"{reason}, got {brief(label)}", source=source, record=record, field=key)
    return text, list(dict.fromkeys(labels))


def parse_classification_document(document: Any, source: str = "<memory>") -> ClassificationDataset:
    rows, metadata = records_and_metadata(document, "samples", source)
    samples = [parse_sample(row, source, n) for n, row in enumerate(rows)]
    declared = metadata.get("num_samples")
    if isinstance(declared, int) and declared != len(samples):
        log.warning("%s: metadata says %d samples, the file has %d", source, declared, len(samples))
    return ClassificationDataset(samples, metadata, source)


def read_classification_json(path: str | Path) -> ClassificationDataset:
    return parse_classification_document(read_json(path), str(path))


def load_classification_data(data_path: str | Path) -> list[LabeledText]:
    """The seed's loader: a list of (text, labels)."""
    dataset = read_classification_json(data_path)
    log.info("%s: %d samples, %d classes", data_path, len(dataset.samples), len(dataset.class_distribution))
    return dataset.samples


def samples_to_document(samples: list[LabeledText], **metadata) -> dict:
    """The seed's JSON format for (text, labels) pairs."""
    dataset = ClassificationDataset(samples)
    return {
        "metadata": {**metadata, "num_samples": len(samples), "num_classes": len(dataset.class_distribution),
                     "class_distribution": dataset.class_distribution},
        "samples": [{"text": text, "taxonomy_codes": labels, "confidence": 1.0} for text, labels in samples],
    }


@dataclass(frozen=True)
class LabelMap:
    """Labels <-> output indices, saved as ``label_map.json`` (``id_to_label``, ``label_to_id``)."""

    labels: tuple[str, ...]

    @classmethod
    def from_samples(cls, samples: list[LabeledText]) -> LabelMap:
        return cls(tuple(sorted({label for _, labels in samples for label in labels})))

    @property
    def label_to_id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    def to_json(self) -> dict:
        return {"id_to_label": {str(i): label for i, label in enumerate(self.labels)},
                "label_to_id": self.label_to_id}

    @classmethod
    def from_json(cls, document: dict) -> LabelMap:
        try:
            pairs = sorted((int(i), label) for i, label in document["id_to_label"].items())
        except (KeyError, ValueError, AttributeError) as exc:
            raise DataFormatError("label map needs 'id_to_label' with integer keys") from exc
        if [i for i, _ in pairs] != list(range(len(pairs))):
            raise DataFormatError("label map ids must be 0..n-1")
        return cls(tuple(label for _, label in pairs))


# -- Augmentation: label-preserving variations for small data, applied to training splits only ----------

def _drop_words(words: list[str], rng: random.Random, rate: float = 0.1) -> list[str]:
    kept = [w for w in words if rng.random() >= rate]
    return kept or words


def _swap_words(words: list[str], rng: random.Random, swaps: int = 2) -> list[str]:
    words = list(words)
    for _ in range(min(swaps, len(words) // 2)):
        i, j = rng.randrange(len(words)), rng.randrange(len(words))
        words[i], words[j] = words[j], words[i]
    return words


def _crop(words: list[str], rng: random.Random, keep: float = 0.8) -> list[str]:
    size = max(1, int(len(words) * keep))
    start = rng.randrange(len(words) - size + 1)
    return words[start:start + size]


VARIATIONS = (_drop_words, _swap_words, _crop)


def augment_classification_data(data: list[LabeledText], target_size: int = 500, multiplier: int = 3,
                                seed: int = 0) -> list[LabeledText]:
    """Grow a small training set toward ``target_size`` with label-preserving text variations.

    Each original sample gets at most ``multiplier - 1`` variants (random word
    dropout, a few word swaps, or a contiguous crop), so every variant comes
    from a training sample and keeps its labels. Originals stay. Data already
    at ``target_size`` is returned unchanged. Call it on a training split,
    never before splitting: variants of one text in both train and
    validation would leak.
    """
    if len(data) >= target_size or multiplier <= 1:
        return list(data)
    rng = random.Random(seed)
    per_sample = min(multiplier - 1, -(-(target_size - len(data)) // len(data)))
    out = list(data)
    for text, labels in data:
        words = text.split()
        for _ in range(per_sample):
            if len(out) >= target_size:
                break
            variant = rng.choice(VARIATIONS)(words, rng) if len(words) > 1 else words
            out.append((" ".join(variant), list(labels)))
    rng.shuffle(out)
    return out


def augment_dataset(data: list[LabeledText], target_size: int = 500, seed: int = 0) -> list[LabeledText]:
    """The seed's entry point: ``augment_classification_data`` with ``multiplier=3``."""
    augmented = augment_classification_data(data, target_size, multiplier=3, seed=seed)
    before = LabelMap.from_samples(data)
    if LabelMap.from_samples(augmented) != before:  # cannot happen; guards future variations
        raise AssertionError("augmentation changed the label set")
    return augmented
