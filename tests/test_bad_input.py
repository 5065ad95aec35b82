"""Generated bad input, thrown at every entry point: a clean error that names what was wrong, or a result.

Hypothesis generates the inputs (``EXAMPLES`` per test, 1,650 in all): broken records, any JSON and
any bytes, malformed database rows, any arguments to every service call and constructor (lone surrogates,
huge strings, generators and iterators included), any pipeline config; ``test_hardening.py`` and
``test_database_hardening.py`` add the defect classes of the second round (URLs, manifests, concurrency).
An entry point may return a defined result or raise the package's own error
(``NeoMLError``); anything else, an unhandled exception, fails the test.
"""

import json
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from neo_ml import MLClassificationService, NCFService
from neo_ml.data import db as database
from neo_ml.data.interactions import read_interactions_json
from neo_ml.data.text import read_classification_json
from neo_ml.errors import DataFormatError, NeoMLError
from neo_ml.workbook.pipeline import load_config

EXAMPLES = 150
FOLDER = Path(tempfile.mkdtemp(prefix="neo-bad-input-"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text a careless or hostile caller sends: lone surrogates (legal JSON), control characters, long runs.
hostile_text = (st.text(max_size=20) | st.tuples(st.text(max_size=6), st.integers(0xD800, 0xDFFF).map(chr),
                                                  st.text(max_size=6)).map("".join)
                | st.tuples(st.text(min_size=1, max_size=3), st.integers(1, 20_000)).map(lambda t: t[0] * t[1]))
# Text no parser should choke on: numbers Python refuses to convert, nesting beyond any stack, long runs.
choking = st.sampled_from(["seed: 1{}", "[{}", "{{a: {}", "'{}", "seed: 2024-01-15T{}"]).flatmap(
    lambda form: st.sampled_from(["1", "[", "{a: ", " "]).map(lambda piece: form.format(piece * 6000)))
anything = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)

VALID_INTERACTIONS = {"interactions": [
    {"user_id": "u1", "item_id": "i1", "timestamp": "2024-01-15T10:30:00", "interaction_type": "view",
     "implicit_rating": 1.0},
    {"user_id": "u1", "item_id": "i2", "timestamp": 1705314600, "interaction_type": "bookmark",
     "implicit_rating": 0.8},
    {"user_id": "u2", "item_id": "i1", "timestamp": 1705314700, "interaction_type": "view",
     "implicit_rating": 0.5}]}
VALID_SAMPLES = {"samples": [{"text": "a book on stars", "taxonomy_codes": ["500"]},
                             {"text": "a history of wars", "taxonomy_codes": ["900", "300"]}]}


def _file(content: str | bytes, name: str) -> Path:
    path = FOLDER / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


def _mutated(document: dict, rows: str, record: int, field: str, value, delete: bool) -> dict:
    """A copy of ``document`` with ``document[rows][record][field]`` set to ``value``, or deleted."""
    document = json.loads(json.dumps(document))
    if delete:
        document[rows][record].pop(field)
    else:
        document[rows][record][field] = value
    return document


def _defined_or_named(call, path: Path):
    """``call()``'s result, or None after a DataFormatError naming ``path``; anything else fails."""
    try:
        return call()
    except DataFormatError as error:
        assert path.name in str(error), str(error)
        return None


# -- files ------------------------------------------------------------------------------------
FORMATS = {  # valid document, its list of records, reader, records read, another name the reader accepts
    "interactions": (VALID_INTERACTIONS, "interactions", read_interactions_json, lambda d: len(d.interactions),
                     {"item_id": "resource_id"}),
    "samples": (VALID_SAMPLES, "samples", read_classification_json, lambda d: len(d.samples), {}),
}


@pytest.mark.parametrize("kind", FORMATS)
@SETTINGS
@given(data=st.data(), value=anything, delete=st.booleans())
def test_a_broken_record_is_named_by_record_and_field(kind, data, value, delete):
    valid, rows, read, count, aliases = FORMATS[kind]
    record = data.draw(st.integers(0, len(valid[rows]) - 1), label="record")
    field = data.draw(st.sampled_from(sorted(valid[rows][record])), label="field")
    path = _file(json.dumps(_mutated(valid, rows, record, field, value, delete)), f"{kind}.json")
    try:
        dataset = read(path)
    except DataFormatError as error:
        message = str(error)
        assert path.name in message and f"record {record}" in message, message
        assert f"'{field}'" in message or f"'{aliases.get(field)}'" in message, message
    else:
        assert count(dataset) == len(valid[rows])


@SETTINGS
@given(document=anything)
def test_any_json_document_is_loaded_or_refused_with_the_file_named(document):
    path = _file(json.dumps(document), "any.json")
    _defined_or_named(lambda: read_interactions_json(path), path)
    _defined_or_named(lambda: read_classification_json(path), path)


@SETTINGS
@given(content=st.binary(max_size=300) | st.text(max_size=300) | hostile_text | choking)
def test_bytes_that_are_not_json_are_refused_with_the_file_named(content):
    path = _file(content, "bytes.json")
    _defined_or_named(lambda: read_interactions_json(path), path)
    _defined_or_named(lambda: read_classification_json(path), path)


# -- database rows ----------------------------------------------------------------------------
cell = st.none() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12) | st.binary(
    max_size=6)


@SETTINGS
@given(user=cell, item=cell, stamp=cell, kind=cell, strength=cell)
def test_malformed_database_rows_are_refused_with_the_row_and_field_named(user, item, stamp, kind, strength):
    path = FOLDER / "rows.db"
    path.unlink(missing_ok=True)
    engine = database.connect(path)
    engine.dispose()
    with sqlite3.connect(path) as raw:  # SQLite stores whatever it is given, as a careless writer would
        raw.execute("INSERT INTO user_interactions (user_id, resource_id, interaction_type, interaction_strength,"
                    " interaction_timestamp, is_positive) VALUES ('u1', 'i1', 'view', 1.0, "
                    "'2024-01-15 10:30:00.000000', 1)")
        raw.execute("PRAGMA ignore_check_constraints = 1")
        try:
            raw.execute("INSERT INTO user_interactions (user_id, resource_id, interaction_type, "
                        "interaction_strength, interaction_timestamp, is_positive) VALUES (?, ?, ?, ?, ?, 1)",
                        (user, item, kind, strength, stamp))
        except sqlite3.IntegrityError:  # NOT NULL refused at the door: nothing to read back
            return
    engine = database.connect(path, create=False)
    try:
        frame = database.read_interactions(engine)
    except DataFormatError as error:
        message = str(error)
        assert "rows.db" in message and "record id 2" in message and "field '" in message, message
    else:
        assert len(frame) == 2
    finally:
        engine.dispose()


# -- service calls ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recommender(trained_checkpoint):
    service = NCFService(model_path=trained_checkpoint)
    service.recommend("warm-up", 1)
    return service


identifier = hostile_text | st.integers(-5, 10**6) | st.none() | st.booleans() | st.floats() | st.lists(
    st.integers(), max_size=3) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
top_k = st.integers(-5, 2**64) | st.floats() | st.none() | st.text(max_size=4) | st.booleans()
# A list of ids, or the same ids as a generator, an iterator, a set or a tuple (read once).
id_collection = st.lists(identifier, max_size=6).flatmap(lambda ids: st.sampled_from(
    [ids, tuple(ids), iter(ids), (i for i in ids), {str(i) for i in ids}]))


def _clean(call):
    try:
        return call()
    except NeoMLError as error:
        assert str(error), type(error).__name__
        return error


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=identifier, items=id_collection | identifier, k=top_k, exclude=anything, chunk=top_k,
       users=id_collection | identifier)
@example(user=None, items=None, k=1, exclude={}, chunk=1, users=[""])  # recommend_batch answers: lists of lists
def test_ncf_calls_with_any_arguments_answer_or_refuse_cleanly(recommender, user, items, k, exclude, chunk, users):
    items = list(items) if hasattr(items, "__next__") else items  # one generator would serve only the first call
    for call in (lambda: recommender.recommend(user, k, exclude), lambda: recommender.predict(user, items),
                 lambda: recommender.predict_batch(user, items)):
        result = _clean(call)
        if isinstance(result, list):
            _check_ranked(result)
        elif isinstance(result, dict):
            assert all(0 <= score <= 1 for score in result.values())
    lists = _clean(lambda: recommender.recommend_batch(users, k, exclude, chunk=chunk))
    if not isinstance(lists, NeoMLError):
        for ranked in lists:
            _check_ranked(ranked)


def _check_ranked(ranked):
    assert isinstance(ranked, list)
    assert all(isinstance(item, str) and 0 <= score <= 1 for item, score in ranked)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.dictionaries(st.sampled_from(["cold_start_threshold", "retrieval", "candidates", "nprobe",
                                                  "device", "rate_limiter", "model_path"]), anything, max_size=3))
def test_ncf_service_made_with_any_arguments_serves_or_is_refused_at_once(trained_checkpoint, arguments):
    """A constructor that accepts its arguments gives a service whose calls work: no raw error later."""
    if "model_path" not in arguments:
        arguments["model_path"] = trained_checkpoint
    try:
        service = NCFService(**arguments)
    except NeoMLError as error:
        assert str(error)
        return
    _clean(lambda: service.recommend("1", 3))
    _clean(lambda: service.predict_batch("1", ["1"]))


@pytest.fixture(scope="module")
def classifier(trained_service):
    return MLClassificationService(model_path=trained_service[0].checkpoint_dir)


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300) | identifier, texts=st.lists(st.text(max_size=50) | identifier, max_size=4)
       | identifier, k=top_k)
def test_classifier_calls_with_any_arguments_answer_or_refuse_cleanly(classifier, text, texts, k):
    result = _clean(lambda: classifier.predict(text, k))
    if not isinstance(result, NeoMLError):
        assert 1 <= len(result.predictions) <= len(classifier.labels) and result.codes
    batch = _clean(lambda: classifier.predict_batch(texts, k))
    if not isinstance(batch, NeoMLError):
        assert len(batch) == len(texts)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(hostile_text, st.lists(hostile_text, max_size=2)) | anything, max_size=4)
       | anything)
def test_fine_tune_with_any_data_is_refused_before_training(classifier, pairs):
    """At most four records: too few to train on, so every input is refused, and none gets a raw error."""
    error = _clean(lambda: classifier.fine_tune(pairs))
    assert isinstance(error, NeoMLError), error


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.dictionaries(st.sampled_from(["model_version", "inference", "rate_limiter"]), anything,
                                 max_size=3))
def test_classifier_service_made_with_any_arguments_serves_or_is_refused_at_once(classifier, arguments):
    try:
        service = MLClassificationService(model_path=classifier.checkpoint_dir, **arguments)
    except NeoMLError as error:
        assert str(error)
        return
    assert service.predict("a book about stars").codes


# -- pipeline configs -------------------------------------------------------------------------
@SETTINGS
@given(document=anything | st.dictionaries(st.sampled_from(["seed", "prepare", "ncf", "benchmark", "x"]),
                                           anything | st.dictionaries(st.sampled_from(
                                               ["epochs", "data", "seed", "calls", "bogus"]), anything),
                                           max_size=3))
def test_any_pipeline_config_is_accepted_or_refused_with_the_file_named(document):
    path = _file(json.dumps(document), "config.yaml")  # JSON is YAML
    try:
        load_config(path)
    except NeoMLError as error:
        assert "config.yaml" in str(error), str(error)


@SETTINGS
@given(content=st.text(max_size=200) | hostile_text | choking)
def test_any_yaml_text_is_accepted_or_refused_with_the_file_named(content):
    path = _file(content, "config.yaml")
    try:
        load_config(path)
    except NeoMLError as error:
        assert "config.yaml" in str(error), str(error)


def test_a_checkpoint_path_longer_than_the_file_system_allows_is_refused_cleanly():
    service = NCFService(model_path="0" * 256)
    with pytest.raises(NeoMLError, match="cannot be a checkpoint path"):
        service.recommend("1", 3)
