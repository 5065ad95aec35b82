"""The database layer's hard cases: passwords never shown, malformed URLs refused in one line, serving
never creating a database, concurrent imports, resource titles.

Runs on SQLite, and on PostgreSQL too when ``NEO_ML_TEST_POSTGRES_URL`` names a server whose user may
create databases (see tests/test_database.py); each PostgreSQL test gets a fresh database. Connection
failures are provoked on a closed port of 127.0.0.1: refused at once, no name to look up.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import socket
import sqlite3
import threading
import traceback
import uuid
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from neo_ml import NCFService, import_data, train_ncf
from neo_ml.data import db as database
from neo_ml.errors import DatabaseError, DataFormatError

POSTGRES_ENV = "NEO_ML_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]
COLUMNS = ["user_id", "item_id", "timestamp", "interaction_type", "implicit_rating"]
T0 = 1_700_000_000
HYPOTHESIS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                            HealthCheck.too_slow])


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting there is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CLOSED_PORT = _closed_port()


# -- databases: a fresh one per test on each backend ------------------------------------------------
@pytest.fixture(scope="session")
def postgres_admin():
    admin = create_engine(os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield admin
    admin.dispose()


@pytest.fixture
def fresh_url(request, tmp_path):
    """``fresh_url(backend)``: the URL of a new, empty database (no tables)."""
    dropped = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'neo_{uuid.uuid4().hex[:8]}.db'}"
        admin = request.getfixturevalue("postgres_admin")
        name = f"neo_ml_hard_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        dropped.append((admin, name))
        return admin.url.set(database=name).render_as_string(hide_password=False)

    yield make
    for admin, name in dropped:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def _count(engine: Engine, table, column=None) -> int:
    what = func.count(func.distinct(column)) if column is not None else func.count()
    with engine.connect() as conn:
        return conn.scalar(select(what).select_from(table))


# -- A: no message or traceback shows a password ----------------------------------------------------
DIALECTS = ["postgresql+psycopg", "postgresql", "postgres", "mysql", "mysql+pymysql", "mssql+pyodbc", "oracle",
            "sqlite", "cockroachdb+psycopg"]
SECRET_KEYS = ["password", "sslpassword", "PWD", "api_token", "client_secret", "sslkey", "Passphrase"]
passwords = st.text(st.characters(codec="utf-8") | st.sampled_from("@:/?#%&=+ '\\\"$;"), min_size=6, max_size=24)


def _url(form: str, dialect: str, password: str, key: str = "password") -> str:
    """A URL on a closed local port with ``password`` in one of the places a password goes."""
    place = f"{dialect}://neo{{}}@127.0.0.1:{CLOSED_PORT}/db{{}}"
    return {
        "raw userinfo": place.format(f":{password}", ""),
        "encoded userinfo": place.format(f":{quote(password, safe='')}", ""),
        "encoded query": place.format("", f"?{key}={quote(password, safe='')}"),
        "raw query": place.format("", f"?connect_timeout=5&{key}={password}"),
        "encoded query among others": place.format("", f"?sslmode=disable&{key}={quote(password, safe='')}"
                                                       "&application_name=neo"),
    }[form]


FORMS = ["raw userinfo", "encoded userinfo", "encoded query", "raw query", "encoded query among others"]
urls = st.tuples(st.sampled_from(FORMS), st.sampled_from(DIALECTS), passwords, st.sampled_from(SECRET_KEYS))


def _shows(text_: str, password: str) -> bool:
    return password in text_ or quote(password, safe="") in text_


def _error_text(call) -> str:
    """What ``call`` lets a user see: its error's message and formatted traceback, chain included."""
    try:
        call()
    except (DatabaseError, DataFormatError) as error:
        return str(error) + "\n" + "".join(traceback.format_exception(error))
    raise AssertionError("no error")


def _check_hidden(call_for, form, dialect, password, key):
    """``call_for(url)``'s error never shows the password; a password that the URL's other parts or the
    fixed wording hold anyway (seen with other passwords in the same place) proves nothing and is skipped."""
    if form == "raw query":
        assume("&" not in password)  # in a raw query '&' starts the next parameter: a different URL
    url = _url(form, dialect, password, key)
    seen = _error_text(lambda: call_for(url))
    if _shows(seen, password):
        wording = [_error_text(lambda p=p: call_for(_url(form, dialect, p, key))) for p in ("Qz9Qz9Qz9", "Qz@Qz9/Qz")]
        rest = url.replace(password, "").replace(quote(password, safe=""), "")
        assume(not any(_shows(w + rest, password) for w in wording))
    assert not _shows(seen, password), (url, seen)


@HYPOTHESIS
@given(urls)
def test_redact_url_hides_the_password_in_every_form(case):
    form, dialect, password, key = case
    url = _url(form, dialect, password, key)
    rest = url.replace(password, "").replace(quote(password, safe=""), "")
    assume(not _shows(rest + database.HIDDEN, password))
    shown = database.redact_url(url)
    assert not _shows(shown, password), (url, shown)
    assert shown.startswith(f"{dialect}://neo") and "\n" not in shown
    with contextlib.suppress(Exception):  # SQLAlchemy's own parse, where it has one, renders safe too
        assert not _shows(database.redact_url(make_url(url)), password)


@HYPOTHESIS
@given(urls, st.booleans())
@example(("raw query", "postgresql+psycopg", "@00000", "password"), False)  # '@' in the query, not the user info
def test_connect_errors_never_show_the_password(case, create):
    _check_hidden(lambda url: database.connect(url, create=create), *case)


@settings(HYPOTHESIS, max_examples=40)
@given(urls)
def test_serving_errors_never_show_the_password(trained_checkpoint, case):
    def serve(url):
        NCFService(db=url, model_path=trained_checkpoint).recommend("u", 1)

    _check_hidden(serve, *case)


@settings(HYPOTHESIS, max_examples=40)
@given(urls)
def test_import_command_never_shows_the_password(synthetic_json, case):
    def command(url):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = import_data.main(["--data", str(synthetic_json), "--database", url])
        assert status == 1 and len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
        raise DatabaseError(err.getvalue())

    _check_hidden(command, *case)


@HYPOTHESIS
@given(passwords, st.sampled_from(["{}", "auth failed for '{}'", "bad conninfo password={} host=x"]))
def test_a_driver_message_quoting_the_password_is_scrubbed_and_unchained(password, message):
    assume(quote(password, safe="") != password or len(password) > 6)
    engine = create_engine(f"postgresql+psycopg://neo:{quote(password, safe='')}@127.0.0.1:{CLOSED_PORT}/db")
    driver = Exception(message.format(password))
    with pytest.raises(DatabaseError) as caught, database.database_errors(engine):
        raise OperationalError("SELECT 1", {}, driver)
    seen = str(caught.value) + "".join(traceback.format_exception(caught.value))
    assume(password not in "SELECT 1" + message + "".join(traceback.format_exception(caught.value)).replace(
        str(caught.value), ""))
    assert not _shows(seen, password), seen
    assert caught.value.__cause__ is None


# -- B: a malformed URL is one line saying what to do ------------------------------------------------
MALFORMED = {
    "postgresql+psycopg://neo@127.0.0.1:abc/db": "port 'abc' is not a number",
    "postgres://neo@127.0.0.1/db": "unknown database kind 'postgres'; use ",
    "postgresql+nodriver://neo@127.0.0.1/db": "unknown database kind 'postgresql+nodriver'",
    "mysql://neo:secret@127.0.0.1/db": "the driver for 'mysql' is not installed",
    "mssql+pyodbc://neo@127.0.0.1/db": "the driver for 'mssql+pyodbc' is not installed",
    "no such://thing": "not a database URL",
    "://": "not a database URL",
    "sqlite://somehost/x.db": "a SQLite URL has no host",
    "sqlite:///x.db?timeout=abc": "could not convert string to float",
    "postgresql+psycopg://neo:p@ss@127.0.0.1:1/db": "more than one '@'; percent-encode",
}


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_one_line_database_errors(url, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatabaseError) as caught:
        database.connect(url)
    message = str(caught.value)
    assert MALFORMED[url] in message and "\n" not in message, message
    assert message.startswith(database.redact_url(url) + ":"), message
    assert "secret" not in message and "p@ss" not in message
    data = _write_json(tmp_path)
    assert import_data.main(["--data", str(data), "--database", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == f"error: {message}", err


def _write_json(folder: Path) -> Path:
    path = folder / "few.json"
    path.write_text('{"interactions": [{"user_id": "u1", "resource_id": "i1", "interaction_type": "view", '
                    '"interaction_strength": 0.5, "interaction_timestamp": "2024-01-15T10:30:00Z"}]}')
    return path


def _no_name_lookups(host, *args, **kwargs):
    """socket.getaddrinfo for loopback addresses only: a generated URL must never send a DNS query."""
    if host in ("127.0.0.1", "::1"):
        return socket_getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, "name lookups are off in this test")


socket_getaddrinfo = socket.getaddrinfo
PREFIXES = ["", "sqlite:///", "sqlite:////", "sqlite://", "postgresql+psycopg://",
            f"postgresql+psycopg://neo@127.0.0.1:{CLOSED_PORT}/", "postgresql+psycopg://neo@127.0.0.1:",
            "postgresql+psycopg://neo:", "postgres://", "mysql://", "oracle://", "a+b://", "://"]
any_text = st.text(st.characters(codec="utf-8") | st.sampled_from("@:/?#%&=+.~"), max_size=40)


@HYPOTHESIS
@given(st.sampled_from(PREFIXES), any_text)
def test_any_text_as_a_url_gives_an_engine_or_a_database_error(tmp_path, prefix, rest):
    """With ``create=False`` (serving, training) any text: an engine, or one line saying why not; and no file."""
    before = set(tmp_path.rglob("*"))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with mock.patch("socket.getaddrinfo", _no_name_lookups):
            engine = database.connect(prefix + rest, create=False)
    except (DatabaseError, DataFormatError) as error:
        assert "\n" not in str(error) and "\r" not in str(error), str(error)
    else:
        assert isinstance(engine, Engine)
        engine.dispose()
    finally:
        os.chdir(cwd)
    assert set(tmp_path.rglob("*")) == before


bad_ports = st.text(st.characters(codec="utf-8", exclude_characters="/?@#"), min_size=1, max_size=10).filter(
    lambda port: not port.isascii() or not port.isdigit())
unknown_kinds = st.from_regex(r"[a-z][a-z0-9]{0,8}(\+[a-z0-9]{1,8})?", fullmatch=True).filter(
    lambda kind: not kind.startswith(("sqlite", "postgresql")))


@settings(HYPOTHESIS, max_examples=60)
@given(st.one_of(bad_ports.map(lambda port: f"postgresql+psycopg://neo@127.0.0.1:{port}/db"),
                 unknown_kinds.map(lambda kind: f"{kind}://neo:Qz9Qz9Qz9@127.0.0.1:{CLOSED_PORT}/db")))
def test_import_command_refuses_a_malformed_url_in_one_line(tmp_path, url):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        status = import_data.main(["--data", str(_write_json(tmp_path)), "--database", url])
    lines = err.getvalue().strip().splitlines()
    assert status == 1 and len(lines) == 1 and lines[0].startswith("error: "), err.getvalue()
    assert "Qz9Qz9Qz9" not in lines[0] and out.getvalue() == ""


# -- C: serving and training never create a database -----------------------------------------------
def _nothing_created(root: Path) -> bool:
    return not (root / "no").exists()


@pytest.mark.parametrize("as_url", [False, True])
def test_serving_does_not_create_a_missing_database(tmp_path, trained_checkpoint, as_url):
    path = tmp_path / "no" / "such" / "neo.db"
    with pytest.raises(DatabaseError) as caught:
        NCFService(db=f"sqlite:///{path}" if as_url else str(path), model_path=trained_checkpoint)
    message = str(caught.value)
    assert f"no database file {path}" in message and "python -m neo_ml.import_data --data" in message, message
    assert _nothing_created(tmp_path)


def test_training_does_not_create_a_missing_database(tmp_path, capsys):
    path = tmp_path / "no" / "neo.db"
    assert train_ncf.main(["--data", f"sqlite:///{path}", "--output", str(tmp_path / "m.pt"), "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"no database file {path}" in err[0], err
    assert _nothing_created(tmp_path)


def test_a_file_removed_after_the_check_is_not_recreated(tmp_path):
    path = tmp_path / "no" / "neo.db"
    with mock.patch.object(database, "_is_file", return_value=True), pytest.raises(DatabaseError) as caught:
        database.connect(path, create=False)
    assert "unable to open database file" in str(caught.value)
    assert _nothing_created(tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_without_the_tables_is_named(backend, fresh_url, trained_checkpoint):
    url = fresh_url(backend)
    if backend == "sqlite":
        with contextlib.closing(sqlite3.connect(make_url(url).database)) as raw:
            raw.execute("CREATE TABLE other (x)")
    for call in (lambda: database.connect(url, create=False),
                 lambda: NCFService(db=url, model_path=trained_checkpoint)):
        with pytest.raises(DatabaseError) as caught:
            call()
        message = str(caught.value)
        assert "has no table user_interactions; import interactions into it with: python -m neo_ml.import_data" \
            in message and message.startswith(database.redact_url(url)), message
    engine = database.connect(url)  # import_data's way: creates the tables
    assert database.connect(engine, create=False) is engine


def test_sqlite_engines_wait_for_a_busy_database(tmp_path):
    for create in (True, False):
        engine = database.connect(tmp_path / "neo.db", create=create)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == database.BUSY_TIMEOUT_S * 1000
        engine.dispose()


# -- D: concurrent imports --------------------------------------------------------------------------
def _two_imports(trial: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two different sets of interactions sharing new users and items (and each with some of its own)."""
    shared_users, shared_items = [f"{trial}u{n}" for n in range(8)], [f"{trial}i{n}" for n in range(8)]

    def side(name, offset):
        users = shared_users + [f"{trial}{name}u{n}" for n in range(3)]
        items = shared_items + [f"{trial}{name}i{n}" for n in range(3)]
        return _frame([(u, i, T0 + offset + n, "view", 0.5)
                       for n, (u, i) in enumerate((u, i) for u in users for i in items[::3])])

    return side("a", 0), side("b", 10_000)


def _check_both_stored(engine: Engine, frames) -> None:
    both = pd.concat(frames)
    assert _count(engine, database.users) == _count(engine, database.users, database.users.c.id) \
        == _count(engine, database.user_interactions, database.user_interactions.c.user_id) \
        == both["user_id"].nunique()
    assert _count(engine, database.resources) == _count(engine, database.resources, database.resources.c.id) \
        == both["item_id"].nunique()
    assert _count(engine, database.user_interactions) == len(both)


def _race(engine: Engine, frames) -> list[Exception]:
    """Import each frame in its own thread, all starting at once; the errors they raised."""
    barrier, errors = threading.Barrier(len(frames)), []

    def run(frame):
        barrier.wait()
        try:
            database.import_interactions(engine, frame)
        except Exception as error:  # noqa: BLE001 - returned
            errors.append(error)

    threads = [threading.Thread(target=run, args=(frame,)) for frame in frames]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_imports_in_threads_add_shared_users_once(backend, fresh_url):
    engine, stored = None, []
    for trial in range(15):
        if engine is None or backend == "sqlite":  # SQLite: a fresh file each trial; PostgreSQL: new ids
            engine, stored = database.connect(fresh_url(backend)), []
        frames = _two_imports(f"t{trial}")
        assert not _race(engine, frames)
        stored += frames
        _check_both_stored(engine, stored)
    engine.dispose()


def _shared_resources(trial: str) -> pd.DataFrame:
    """Texts for the shared items both sides of ``_two_imports`` take: each side upserts them in its transaction."""
    return pd.DataFrame([(f"{trial}i{n}", f"Shared {n}", f"Read by both sides of {trial}.") for n in (0, 3, 6)],
                        columns=["item_id", "title", "description"])


def _import_worker(urls: list[str], side: int, barrier, results) -> None:
    """One of two processes: for each trial, wait for the other, then import this side's interactions."""
    try:
        for trial, url in enumerate(urls):
            engine = database.connect(url)
            barrier.wait(timeout=120)
            database.import_interactions(engine, _two_imports(f"p{trial}")[side],
                                         resources_frame=_shared_resources(f"p{trial}"))
            engine.dispose()
        results.put((side, None))
    except BaseException as error:  # noqa: BLE001 - sent to the parent
        barrier.abort()  # the other process stops waiting
        results.put((side, f"{type(error).__name__}: {error}"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_imports_in_processes_add_shared_users_once(backend, fresh_url):
    shared = fresh_url(backend)
    urls = [fresh_url(backend) if backend == "sqlite" else shared for _ in range(10)]
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_import_worker, args=(urls, side, barrier, results)) for side in (0, 1)]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == {0: None, 1: None}, outcomes
    for trial, url in enumerate(urls if backend == "sqlite" else []):
        engine = database.connect(url, create=False)
        _check_both_stored(engine, _two_imports(f"p{trial}"))
        assert database.read_resources(engine).values.tolist() == _shared_resources(f"p{trial}").values.tolist()
        engine.dispose()
    if backend != "sqlite":
        engine = database.connect(shared, create=False)
        frames = [frame for trial in range(len(urls)) for frame in _two_imports(f"p{trial}")]
        _check_both_stored(engine, frames)
        engine.dispose()


# -- E: titles --------------------------------------------------------------------------------------
def _titles(engine: Engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(database.resources.c.id, database.resources.c.title)).all())


@pytest.mark.parametrize("portable", [False, True], ids=["upsert", "portable"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_import_fills_missing_titles_and_keeps_existing_ones(backend, portable, fresh_url, monkeypatch):
    if portable:  # the read-then-write path of dialects without ON CONFLICT
        monkeypatch.setattr(database, "UPSERTS", {})
    engine = database.connect(fresh_url(backend))
    rows = _frame([("u1", "i1", T0, "view", 0.5), ("u1", "i2", T0 + 1, "view", 0.5)])
    database.import_interactions(engine, rows)
    assert _titles(engine) == {"i1": None, "i2": None}
    database.import_interactions(engine, rows, titles={"i1": "First"})
    assert _titles(engine) == {"i1": "First", "i2": None}
    more = _frame([("u2", "i1", T0 + 2, "view", 0.5), ("u2", "i3", T0 + 3, "view", 0.5)])
    database.import_interactions(engine, more, titles={"i1": "Second", "i3": "Third"})
    assert _titles(engine) == {"i1": "First", "i2": None, "i3": "Third"}
    assert _count(engine, database.users) == 2 and _count(engine, database.user_interactions) == 6
