"""Shared fixtures: synthetic data, one small trained checkpoint per session, and a PostgreSQL server.

PostgreSQL comes from ``NEO_ML_TEST_POSTGRES_URL`` (a server whose user may create databases); without it a
throwaway server is started from the PostgreSQL binaries and stopped at the end of the session."""

from __future__ import annotations

import glob
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from neo_ml.classification.service import MLClassificationService
from neo_ml.data.corpora import load_text_corpus
from neo_ml.data.interactions import InteractionDataset, dataset_to_document
from neo_ml.data.splits import leave_one_out_split
from neo_ml.data.synthetic import create_synthetic_interactions
from neo_ml.ncf.config import NCFConfig

# Training commands log nothing to MLflow in tests but the tracking tests' own (tests/test_tracking.py).
os.environ["NEO_ML_NO_TRACKING"] = "1"


@pytest.fixture(autouse=True)
def _isolated_folders(tmp_path, monkeypatch):
    """Nothing a test writes lands in the checkout; the real corpus cache stays shared."""
    monkeypatch.setenv("NEO_ML_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("NEO_ML_OUTPUTS_DIR", str(tmp_path / "outputs"))


@pytest.fixture(scope="session")
def synthetic_frame():
    return create_synthetic_interactions(num_users=300, num_items=300, num_interactions=6000, seed=7)


@pytest.fixture(scope="session")
def synthetic_split(synthetic_frame):
    return leave_one_out_split(synthetic_frame, seed=1)


# The pointwise NeuMF + history: the service, checkpoint and safety tests exercise its paths.
SMALL_CONFIG = dict(architecture="neumf", embedding_dim=16, hidden_layers=[32, 16], epochs=6, batch_size=256,
                    patience=2, history_length=3, seed=0)


@pytest.fixture(scope="session")
def small_config():
    return NCFConfig(**SMALL_CONFIG)


@pytest.fixture(scope="session")
def synthetic_json(tmp_path_factory, synthetic_frame):
    path = tmp_path_factory.mktemp("data") / "interactions.json"
    path.write_text(json.dumps(dataset_to_document(InteractionDataset(synthetic_frame))))
    return path


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, synthetic_json):
    """A checkpoint written by the training command itself."""
    from neo_ml.commands.train_ncf import main

    path = tmp_path_factory.mktemp("models") / "ncf.pt"
    args = ["--data", str(synthetic_json), "--output", str(path), "--no-progress"]
    for key, value in SMALL_CONFIG.items():
        flag = "--" + key.replace("_", "-")
        args += [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]
    assert main(args) == 0
    return path


@pytest.fixture(scope="session")
def dewey_subset():
    train, test = load_text_corpus("20ng-dewey")
    rng = random.Random(0)
    return rng.sample(train, 300), rng.sample(test, 100)


@pytest.fixture(scope="session")
def trained_service(tmp_path_factory, dewey_subset):
    folder = tmp_path_factory.mktemp("models") / "benchmark_v1"
    service = MLClassificationService(model_path=folder)
    metrics = service.fine_tune(dewey_subset[0], max_length=64, batch_size=32)
    return service, metrics


@pytest.fixture(scope="module")
def db_service(tmp_path_factory, trained_checkpoint, synthetic_json):
    """An NCFService reading seen items from a SQLite database of the synthetic data (one per module)."""
    from neo_ml import NCFService
    from neo_ml.data import db as database
    from neo_ml.data.interactions import read_interactions_json

    engine = database.connect(tmp_path_factory.mktemp("db") / "neo.db")
    database.import_interactions(engine, read_interactions_json(synthetic_json).interactions)
    return NCFService(db=engine, model_path=trained_checkpoint)


@pytest.fixture
def ncf_parts(trained_checkpoint):
    """(model, config, users, items, known pairs) of the trained checkpoint, as ``save_ncf_checkpoint`` takes them."""
    import numpy as np

    from neo_ml.data.ids import IdMap
    from neo_ml.ncf.checkpoint import load_ncf_checkpoint, model_from_checkpoint

    checkpoint = load_ncf_checkpoint(trained_checkpoint)
    users = IdMap(tuple(sorted(checkpoint["user_id_map"], key=checkpoint["user_id_map"].get)))
    items = IdMap(tuple(sorted(checkpoint["item_id_map"], key=checkpoint["item_id_map"].get)))
    counts = np.diff(checkpoint["user_items_indptr"].numpy())
    pairs = np.stack([np.repeat(np.arange(len(users)), counts), checkpoint["user_items"].numpy()], axis=1)
    return model_from_checkpoint(checkpoint), checkpoint["config"], users, items, pairs


@pytest.fixture
def classifier_copy(trained_service, tmp_path):
    """A copy of the trained classifier's checkpoint folder, free to tamper with."""
    import shutil

    copy = tmp_path / "classifier"
    shutil.copytree(trained_service[0].checkpoint_dir, copy)
    return copy


# The backend's export format (resource ids, strengths, ISO times, held-out candidates), as it writes it.
BACKEND_FORMAT = {
    "metadata": {"dataset_name": "recommendation_benchmark_v1"},
    "interactions": [
        {"user_id": "user_035", "resource_id": "resource_013", "interaction_type": "bookmark",
         "strength": 0.82, "timestamp": "2025-01-22T03:49:00"},
        {"user_id": "user_036", "resource_id": "resource_014", "interaction_type": "view",
         "strength": 0.3, "timestamp": "2025-01-22T04:49:00"},
    ],
    "held_out_test": [
        {"user_id": "user_035", "resource_id": "resource_014", "is_relevant": True},
        {"user_id": "user_035", "resource_id": "resource_099", "is_relevant": False},
        {"user_id": "user_035", "resource_id": "resource_014", "is_relevant": True},
    ],
}


@pytest.fixture
def backend_document() -> dict:
    """A fresh copy of ``BACKEND_FORMAT`` for a test to change."""
    return json.loads(json.dumps(BACKEND_FORMAT))


POSTGRES_ENV = "NEO_ML_TEST_POSTGRES_URL"
HOW_TO = (f"The database tests need PostgreSQL: set {POSTGRES_ENV} to a server URL whose user may create "
          "databases (e.g. postgresql+psycopg://neo@127.0.0.1:5432/postgres), or install the server binaries "
          "(initdb, pg_ctl; Debian: apt-get install postgresql) so that the tests start a throwaway server.")


# -- PostgreSQL: a server for the session, a fresh database per test --------------------------------
def _pg_binary(name: str) -> str | None:
    """``name`` on PATH, else the newest under Debian's /usr/lib/postgresql/VERSION/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    return max(versions, key=lambda p: [int(n) for n in Path(p).parent.parent.name.split(".") if n.isdigit()],
               default=None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _throwaway_server():
    """initdb into a temp folder, start on a free loopback port, yield the URL, stop and delete."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.fail(f"{POSTGRES_ENV} is not set and no PostgreSQL binaries were found. {HOW_TO}", pytrace=False)
    folder = Path(tempfile.mkdtemp(prefix="neo_ml_pg_"))
    as_user = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(f"running as root and there is no 'postgres' user to run the server as. {HOW_TO}",
                        pytrace=False)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = folder / "data", folder / "server.log"

    def run(*args):
        done = subprocess.run([*as_user, *map(str, args)], cwd=folder, capture_output=True, text=True, timeout=120)
        if done.returncode:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{' '.join(map(str, args))} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                        f"{server_log}\n{HOW_TO}", pytrace=False)

    try:
        run(initdb, "-D", data, "-U", "neo", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        port = _free_port()
        run(pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", f"-k {folder} -p {port} -h 127.0.0.1 -F", "start")
        try:
            yield f"postgresql+psycopg://neo@127.0.0.1:{port}/postgres"
        finally:
            run(pg_ctl, "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """An admin engine on the PostgreSQL server (autocommit, to create and drop databases)."""
    given = os.environ.get(POSTGRES_ENV)
    with nullcontext(given) if given else _throwaway_server() as url:
        admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect():
                pass
        except DBAPIError as error:
            pytest.fail(f"cannot connect to PostgreSQL at {make_url(url)!r}: {error.orig}\n{HOW_TO}", pytrace=False)
        yield admin
        admin.dispose()
