"""The backend's interaction tables through SQLAlchemy; a SQLite file by default.

Tables and columns follow Neo Alexandria's backend: ``users``, ``resources``
and ``user_interactions`` (``user_id``, ``resource_id``, ``interaction_type``,
``interaction_strength``, ``interaction_timestamp``, ``is_positive``), indexed
on (``user_id``, ``resource_id``). Any SQLAlchemy URL works; a plain path
means a SQLite file. SQLite and PostgreSQL (``postgresql+psycopg://...``) are
tested and give the same results.

Nothing this module raises or returns for display shows a database password: every name
goes through ``redact_url``, and driver messages have the password scrubbed out.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import traceback
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    distinct,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from neo_ml import paths
from neo_ml.data.interactions import interactions_frame, parse_interaction, resource_text
from neo_ml.errors import DatabaseError, DataFormatError

# Strength above which the backend counts an interaction as positive.
POSITIVE_THRESHOLD = 0.4

metadata = MetaData()
users = Table("users", metadata, Column("id", String(64), primary_key=True),
              Column("username", String(255)))
resources = Table("resources", metadata, Column("id", String(64), primary_key=True),
                  Column("title", String(1024)), Column("description", Text))
ADDED_COLUMNS = {"resources": ("description",)}  # columns an older database lacks, added on connect(create=True)
user_interactions = Table(
    "user_interactions", metadata,
    # 64-bit: a busy library passes 2^31 interactions; SQLite's INTEGER PRIMARY KEY already is, and only it
    # autoincrements
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("resource_id", String(64), ForeignKey("resources.id", ondelete="CASCADE"), nullable=False),
    Column("interaction_type", String(50), nullable=False, default="view"),
    Column("interaction_strength", Float, nullable=False, default=0.0),
    Column("interaction_timestamp", DateTime(timezone=True), nullable=False),
    Column("is_positive", Integer, nullable=False, default=1),
    Index("idx_user_interactions_user_resource", "user_id", "resource_id"),
    Index("idx_user_interactions_timestamp", "interaction_timestamp"),
    # Serving reads one user's items in time order; this index makes that a range scan with no sort and,
    # holding the items too, no table lookups (a 300-item user: 0.9 ms -> 0.2 ms on SQLite).
    Index("idx_user_interactions_user_time_item", "user_id", "interaction_timestamp", "id", "resource_id"),
)
REPLACED_INDEXES = ("idx_user_interactions_user_time",)  # an older database's, dropped when it gains the above


# -- naming a database without its secrets ----------------------------------------------------------
HIDDEN = "***"
# Query parameters whose values are hidden: password, sslpassword, and anything that looks secret.
SECRET_KEY = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)
KINDS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
HOW_TO_IMPORT = "python -m neo_ml.import_data --data FILE.json --database {}"


def redact_url(url: str | URL | Path) -> str:
    """``url`` fit for a message: its password and secret-looking query values shown as ``***``.

    Works on the text, not on SQLAlchemy's parse, so a malformed URL is hidden too, and errs
    towards hiding: everything between ``USER:`` and the last ``@`` is the password, everything
    after a secret query key is hidden. A plain path (no ``://``) is a SQLite file and is shown
    as is. Characters that are not printable are escaped, so the result is one line.
    """
    return _printable(_redaction(_url_text(url))[0])


def _url_text(url: str | URL | Path) -> str:
    return url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)


def _redaction(text: str) -> tuple[str, list[str]]:
    """``text`` with its secrets replaced by ``***``, and the raw texts it hid."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text, []
    # The query's secrets first: a raw query may hold '@' (password=@x), which is not the user info's.
    rest, hidden = _hide_query_secrets(rest)
    rest, more = _hide_userinfo(rest)
    return f"{scheme}://{rest}", hidden + more


def _hide_userinfo(rest: str) -> tuple[str, list[str]]:
    """Hide ``PASSWORD`` in ``USER:PASSWORD@HOST...``: up to the last ``@``, as the password may hold any
    character. Without ``@``, a port that is not a number may be a password whose ``@`` was left out:
    then all after the first ``:`` is hidden."""
    if rest.startswith("/"):  # no host part (sqlite:///PATH, postgresql:///db?host=...)
        return rest, []
    if "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        user, colon, password = userinfo.partition(":")
        return (f"{user}:{HIDDEN}@{host}", [password]) if colon else (rest, [])
    authority = re.match(r"[^/?#]*", rest).group()
    host, colon, port = authority.partition(":")
    if colon and port and not port.isdigit() and not authority.startswith("["):
        return f"{host}:{HIDDEN}", [rest[len(host) + 1:]]
    return rest, []


def _hide_query_secrets(rest: str) -> tuple[str, list[str]]:
    """Hide the value of the first secret-looking query key and everything after it (a value may hold ``&``)."""
    head, question, query = rest.partition("?")
    if not question:
        return rest, []
    parts = query.split("&")
    for n, part in enumerate(parts):
        key, _, value = part.partition("=")
        if SECRET_KEY.search(unquote_plus(key)):
            kept = "".join(f"{p}&" for p in parts[:n])
            return f"{head}?{kept}{key}={HIDDEN}", [value, "&".join([value, *parts[n + 1:]])]
    return rest, []


def _secret_forms(hidden: list[str]) -> list[str]:
    """Every form a hidden text may take in a driver's message: raw, percent-decoded, percent-encoded,
    quoted as in a libpq conninfo; longest first, so that no part of a longer one is left over."""
    forms = set()
    for text in hidden:
        for plain in {text, unquote(text), unquote_plus(text)}:
            forms |= {plain, quote(plain, safe=""), quote_plus(plain), quote(plain),
                      plain.replace("\\", "\\\\").replace("'", "\\'")}
    return sorted(filter(None, forms), key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, HIDDEN)
    return text


def _printable(text: str) -> str:
    """``text`` on one line: control and other unprintable characters escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _mentions(error: BaseException, secrets: list[str]) -> bool:
    """Whether ``error``'s formatted traceback, chain included, shows any of ``secrets``."""
    text = "".join(traceback.format_exception(error))
    return any(secret in text for secret in secrets)


# -- errors as one line naming the database ---------------------------------------------------------
def _where(target: Engine | URL | str | Path) -> tuple[str, list[str]]:
    """The name to show for ``target`` and the secret texts no message about it may contain."""
    shown, hidden = _redaction(_url_text(target.url if isinstance(target, Engine) else target))
    secrets = _secret_forms(hidden)
    return _printable(shown), secrets


def _database_error(target: Engine | URL | str | Path, message: str,
                    cause: BaseException | None = None) -> DatabaseError:
    """A one-line ``DatabaseError``: ``NAME: message`` with every secret of ``target`` hidden.

    Chained to ``cause`` only when the chain's traceback shows no secret; raise the result
    inside an ``except`` block with a plain ``raise``, which keeps that choice.
    """
    shown, secrets = _where(target)
    error = DatabaseError(_printable(_scrub(f"{shown}: {message}", secrets)))
    error.__cause__ = cause if cause is not None and not _mentions(cause, secrets) else None
    error.__suppress_context__ = True
    return error


def _first_line(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


@contextlib.contextmanager
def database_errors(engine: Engine | URL | str):
    """SQLAlchemy's and the driver's errors as one-line ``DatabaseError`` naming the database (secrets hidden)."""
    try:
        yield
    except SQLAlchemyError as error:
        raise _database_error(engine, _first_line(error), error)  # noqa: B904 - the chain is set, or dropped


def database_name(engine: Engine) -> str:
    """The engine's URL for messages and output, password and secret query values hidden."""
    return redact_url(engine.url)


def default_database_url() -> str:
    return f"sqlite:///{paths.data_dir() / 'neo_alexandria.db'}"


def is_database_url(text: str | Path) -> bool:
    """Whether ``text`` is meant as a database URL (it has ``://``) rather than a SQLite path.

    A malformed URL counts: ``connect`` then says what is wrong with it.
    """
    return not isinstance(text, Path) and "://" in str(text)


# -- connecting -------------------------------------------------------------------------------------
BUSY_TIMEOUT_S = 30  # SQLite: how long a writer waits for another's lock before "database is locked"


def connect(url: str | Path | Engine | None = None, create: bool = True) -> Engine:
    """An engine for ``url`` (URL, SQLite path or engine); creates the tables when asked.

    With ``create=False`` (serving, training) nothing is created: a missing SQLite file and a
    database without the interactions table are a ``DatabaseError`` saying how to make one.
    A malformed URL, an unknown kind or a missing driver is a one-line ``DatabaseError`` naming
    the URL with its password hidden.
    """
    engine = url if isinstance(url, Engine) else _new_engine(parse_database_url(url), create)
    if create:
        _create_tables(engine)
    else:
        _require_tables(engine)
    return engine


def parse_database_url(url: str | Path | None) -> URL:
    """The SQLAlchemy URL for a URL text, a SQLite path or None (the default database).

    Raises a one-line ``DatabaseError`` for a malformed URL, naming it with its secrets hidden.
    """
    text = default_database_url() if url is None else str(url)
    if not is_database_url(url if isinstance(url, Path) else text):
        return URL.create("sqlite", database=_absolute(text))
    _refuse_unencoded_at(text)
    try:
        return make_url(text)
    except ArgumentError:
        raise _database_error(text, f"not a database URL; expected {KINDS}") from None
    except ValueError as error:  # SQLAlchemy's int(port)
        port = re.search(r"://(?:[^@]*@)?(?:\[[^\]]*\]|[^/:?]*):([^/?]*)", redact_url(text))
        problem = f"port {port.group(1)!r} is not a number" if port else _first_line(error)
        raise _database_error(text, problem) from None


def _absolute(path: str) -> str:
    """``path`` made absolute, ``~`` expanded and links resolved where the file system allows."""
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError, ValueError):
        return os.path.abspath(path)


def _refuse_unencoded_at(text: str) -> None:
    """A network URL with two ``@``: a password or user name holding ``@`` unencoded. SQLAlchemy would take
    part of the password for the host and connect there; refuse instead."""
    if not text.startswith("sqlite") and text.partition("://")[2].count("@") > 1:
        raise _database_error(text, "more than one '@'; percent-encode '@' in the user name or password as %40 "
                                    "(urllib.parse.quote(password, safe=''))")


def _new_engine(url: URL, create: bool) -> Engine:
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        return _sqlite_engine(url, create)
    return _create_engine(url)


def _create_engine(url: URL, **options) -> Engine:
    """``create_engine`` with its errors (unknown kind, missing driver, bad option) as one-line ``DatabaseError``."""
    try:
        return create_engine(url, **options)
    except NoSuchModuleError:
        raise _database_error(url, f"unknown database kind {url.drivername!r}; use {KINDS}") from None
    except ImportError as error:
        raise _database_error(url, f"the driver for {url.drivername!r} is not installed ({error}); install it, "
                                   f"or use {KINDS}") from None
    except (ArgumentError, ValueError, TypeError) as error:
        raise _database_error(url, _first_line(error)) from None


def _sqlite_engine(url: URL, create: bool) -> Engine:
    """A SQLite engine with a generous busy timeout; without ``create`` it opens an existing file only."""
    file = _sqlite_file(url)
    options = {} if "timeout" in url.query else {"connect_args": {"timeout": BUSY_TIMEOUT_S}}
    if file is None:
        return _create_engine(url, **options)
    if create:
        _make_folder(url, file.parent)
        return _create_engine(url, **options)
    if not _is_file(file):
        raise _database_error(url, f"no database file {file}; make one with: {HOW_TO_IMPORT.format(redact_url(url))}")
    # mode=rw: SQLite opens the file read-write and never creates it, even if it is deleted after the check.
    uri = f"{file.as_uri()}?mode=rw"
    return _create_engine(url, creator=lambda: sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S,
                                                               check_same_thread=False))


def _sqlite_file(url: URL) -> Path | None:
    """The absolute path of a SQLite URL's file; None for an in-memory database or a ``file:`` URI.

    Checked here, as SQLAlchemy's own check is skipped for an engine made with a ``creator``.
    """
    if url.host or url.port or url.username or url.password:
        raise _database_error(url, "a SQLite URL has no host, port or user; use sqlite:///relative/path.db or "
                                   "sqlite:////absolute/path.db")
    name = url.database or ""
    uri = str(url.query.get("uri", "")).lower() in ("true", "1")
    if name in ("", ":memory:") or uri or name.startswith("file:"):
        return None
    return Path(_absolute(name))


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _make_folder(url: URL, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as error:
        raise _database_error(url, f"cannot create the folder {folder}: {getattr(error, 'strerror', None) or error}"
                              ) from None


# PostgreSQL advisory lock key under which the tables are created ("neo_ml" in ASCII).
TABLES_LOCK = 0x6E656F5F6D6C


def _create_tables(engine: Engine) -> None:
    """Create the missing tables and indexes, safely when several imports start on a new database at once.

    ``create_all`` checks, then creates: two at once both find no table and one fails with "already
    exists". Under SQLite's write lock, or a PostgreSQL advisory lock (DDL is transactional there),
    the second checks after the first has committed.
    """
    with database_errors(engine), _write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(TABLES_LOCK)))
        metadata.create_all(conn)
        _add_columns(conn)
        _widen_interaction_ids(conn)
        for index in user_interactions.indexes:  # create_all gives an existing table none of its new indexes
            index.create(conn, checkfirst=True)
        for name in REPLACED_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def _add_columns(conn) -> None:
    """Give an older database's tables the columns added since (``ADDED_COLUMNS``); its rows stay."""
    inspector = sa_inspect(conn)
    for name, columns in ADDED_COLUMNS.items():
        present = {column["name"] for column in inspector.get_columns(name)}
        for column in columns:
            if column not in present:
                kind = metadata.tables[name].c[column].type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {column} {kind}")


def _widen_interaction_ids(conn) -> None:
    """An older PostgreSQL database's 32-bit ``user_interactions.id`` (and its sequence) becomes 64-bit; its
    rows stay. The table is rewritten once, under a lock: imports and reads wait for it."""
    if conn.dialect.name != "postgresql":
        return
    kind = conn.exec_driver_sql("SELECT data_type FROM information_schema.columns WHERE table_schema = "
                                "current_schema() AND table_name = 'user_interactions' AND column_name = 'id'").scalar()
    if kind != "integer":
        return
    conn.exec_driver_sql("ALTER TABLE user_interactions ALTER COLUMN id TYPE BIGINT")
    sequence = conn.exec_driver_sql("SELECT pg_get_serial_sequence('user_interactions', 'id')").scalar()
    if sequence:
        conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} AS BIGINT")


def _require_tables(engine: Engine) -> None:
    """Serving and training read ``user_interactions``: say so when the database has none."""
    with database_errors(engine):
        found = sa_inspect(engine).has_table(user_interactions.name)
    if not found:
        raise _database_error(engine, f"has no table {user_interactions.name}; import interactions into it with: "
                                      f"{HOW_TO_IMPORT.format(database_name(engine))}")


# -- writing ----------------------------------------------------------------------------------------
def import_interactions(engine: Engine, frame: pd.DataFrame, replace: bool = False,
                        titles: dict[str, str] | None = None, resources_frame: pd.DataFrame | None = None) -> int:
    """Write a normalised interactions frame into the tables, in one transaction.

    Users and resources are added as needed, safely while other imports run: an id another
    import added meanwhile is kept, not a ``UNIQUE`` failure. A title fills a resource's empty
    one; an existing title stays. With ``replace`` the existing interactions are deleted first
    (users and resources stay). On any error nothing is written. Returns the number of
    interactions inserted. Running the same import twice stores its interactions twice.
    ``resources_frame`` (item_id, title, description) is upserted in the same transaction first.
    """
    rows = _interaction_rows(frame)
    new_users = [{"id": u, "username": u} for u in sorted(set(frame["user_id"]))]
    new_items = [{"id": i, "title": (titles or {}).get(i)} for i in sorted(set(frame["item_id"]))]
    with database_errors(engine), _write_transaction(engine) as conn:
        _add_missing(conn, users, new_users)  # sorted, in one order in every import: no deadlock
        if resources_frame is not None:
            _upsert_resources(conn, resources_frame.sort_values("item_id"))
        _add_missing(conn, resources, new_items, fill="title")
        if replace:
            conn.execute(delete(user_interactions))
        if rows:
            conn.execute(insert(user_interactions), rows)
    return len(rows)


def import_resources(engine: Engine, frame: pd.DataFrame) -> int:
    """Upsert resources (``_upsert_resources``) in one transaction; returns the number of rows written."""
    with database_errors(engine), _write_transaction(engine) as conn:
        return _upsert_resources(conn, frame)


def _upsert_resources(conn, frame: pd.DataFrame) -> int:
    """Resources from a frame of item_id, title, description (``interactions.parse_resources``): a new id is
    added, a known one takes the frame's title and description (an empty one leaves the stored value).
    Concurrent imports of the same id both succeed and leave one row."""
    rows = [{"id": item, "title": title or None, "description": description or None}
            for item, title, description in frame[["item_id", "title", "description"]].itertuples(index=False)]
    if not rows:
        return 0
    upsert = UPSERTS.get(conn.dialect.name)
    if upsert is None:
        _add_missing_portably(conn, resources, rows, None)
        conn.execute(update(resources).where(resources.c.id == bindparam("key")).values(
            title=func.coalesce(bindparam("new_title"), resources.c.title),
            description=func.coalesce(bindparam("new_description"), resources.c.description)),
            [{"key": r["id"], "new_title": r["title"], "new_description": r["description"]} for r in rows])
    else:
        statement = upsert(resources)
        conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_={
            column: func.coalesce(statement.excluded[column], resources.c[column])
            for column in ("title", "description")}), rows)
    return len(rows)


def read_resources(engine: Engine) -> pd.DataFrame:
    """Every resource with some text: item_id, title, description (empty strings where NULL)."""
    r = resources.c
    with database_errors(engine), engine.connect() as conn:
        # A database made before descriptions existed (and opened without create) has titles only.
        has_description = "description" in {c["name"] for c in sa_inspect(conn).get_columns("resources")}
        description = r.description if has_description else type_coerce(None, Text).label("description")
        rows = conn.execute(select(r.id, r.title, description).where(
            r.title.is_not(None) | (r.description.is_not(None) if has_description else False))
            .order_by(r.id)).all()
    return pd.DataFrame([(str(i), t or "", d or "") for i, t, d in rows],
                        columns=["item_id", "title", "description"]).astype(str)


def _interaction_rows(frame: pd.DataFrame) -> list[dict]:
    """The frame's rows as ``user_interactions`` rows; a missing timestamp is refused before anything is sent."""
    stamps = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    missing = stamps.isna().to_numpy()
    if missing.any():  # psycopg would write NaT as a date in the year 48113
        raise DataFormatError("null value", source="interactions", record=int(missing.argmax()), field="timestamp")
    stamps = stamps.dt.to_pydatetime()
    strength = frame["implicit_rating"].to_numpy(float)
    return [
        {"user_id": u, "resource_id": i, "interaction_type": t, "interaction_strength": float(s),
         "interaction_timestamp": ts, "is_positive": int(s > POSITIVE_THRESHOLD or s == 1.0)}
        for u, i, t, s, ts in zip(frame["user_id"], frame["item_id"], frame["interaction_type"],
                                  strength, stamps, strict=True)
    ]


@contextlib.contextmanager
def _write_transaction(engine: Engine):
    """A transaction that writes; on SQLite it takes the write lock first (``BEGIN IMMEDIATE``).

    A SQLite transaction that reads and then writes can fail at once with "database is locked"
    when another holds the lock (the busy timeout cannot help a reader that wants to upgrade);
    one that starts with the write lock waits its turn instead.
    """
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


# Dialects with INSERT ... ON CONFLICT: one statement adds what is missing, whatever other imports do.
UPSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


def _add_missing(conn, table: Table, rows: list[dict], fill: str | None = None) -> None:
    """Insert the rows whose ``id`` is not in ``table``; on a known id set ``fill`` where it is NULL.

    Concurrent imports adding the same id both succeed and leave one row. Dialects without
    ``ON CONFLICT`` read the known ids first (two imports racing there can still clash).
    """
    if not rows:
        return
    upsert = UPSERTS.get(conn.dialect.name)
    if upsert is None:
        return _add_missing_portably(conn, table, rows, fill)
    filling = [row for row in rows if fill and row[fill] is not None]
    plain = [row for row in rows if not (fill and row[fill] is not None)]
    if plain:
        conn.execute(upsert(table).on_conflict_do_nothing(index_elements=["id"]), plain)
    if filling:
        statement = upsert(table)
        conn.execute(statement.on_conflict_do_update(index_elements=["id"], set_={fill: statement.excluded[fill]},
                                                     where=table.c[fill].is_(None)), filling)


def _add_missing_portably(conn, table: Table, rows: list[dict], fill: str | None) -> None:
    """``_add_missing`` in plain SQL: read the known ids, insert the others, fill the NULLs."""
    known = set(conn.scalars(select(table.c.id)))
    new = [row for row in rows if row["id"] not in known]
    if new:
        conn.execute(insert(table), new)
    filling = [{"key": row["id"], "value": row[fill]} for row in rows
               if fill and row["id"] in known and row[fill] is not None]
    if filling:
        conn.execute(update(table).where(table.c.id == bindparam("key"), table.c[fill].is_(None))
                     .values({fill: bindparam("value")}), filling)


def read_interactions(engine: Engine, positive_only: bool = False) -> pd.DataFrame:
    """All interactions as a normalised frame; ``positive_only`` keeps rows with is_positive = 1.

    Each row is checked like a JSON record: a bad value names the row (its
    ``id``) and the column. The timestamp is read raw, so a malformed
    one is reported rather than failing inside the driver.
    """
    t = user_interactions.c
    query = select(t.user_id, t.resource_id, type_coerce(t.interaction_timestamp, String),
                   t.interaction_type, t.interaction_strength, t.id)
    if positive_only:
        query = query.where(t.is_positive == 1)
    source = database_name(engine)
    with database_errors(engine), engine.connect() as conn:
        rows = conn.execute(query.order_by(t.interaction_timestamp, t.id)).all()
    if not rows:
        raise DataFormatError("no interactions", source=source, field="user_interactions")
    columns = ("user_id", "resource_id", "interaction_timestamp", "interaction_type", "interaction_strength")
    records = [parse_interaction(dict(zip(columns, row[:-1], strict=True)), source, f"id {row[-1]}")
               for row in rows]
    return interactions_frame(records)


class InteractionStore:
    """Fast per-user reads for serving: indexed queries on a per-thread autocommit connection.

    Every read sees the latest committed rows and holds no transaction open; a
    connection the server dropped is replaced and the read retried once.
    The hot queries are compiled once for the database's dialect and run on
    the driver's cursor, skipping per-call SQLAlchemy work (about 0.1 ms).
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._local = threading.local()
        t = user_interactions.c
        by_user = select(t.resource_id).where(t.user_id == bindparam("user"))
        self._all_items = self._compile(by_user.order_by(t.interaction_timestamp, t.id))
        self._latest = self._compile(by_user.order_by(t.interaction_timestamp.desc(), t.id.desc())
                                     .limit(bindparam("n", literal_execute=False)))
        # Distinct users per item, as the checkpoint counts popularity; ties by id in code point
        # order, as the checkpoint and SQLite sort, whatever the PostgreSQL database's collation.
        users_per_item = func.count(distinct(t.user_id))
        by_id = t.resource_id.collate("C") if engine.dialect.name == "postgresql" else t.resource_id
        self._popular = self._compile(select(t.resource_id, users_per_item).group_by(t.resource_id)
                                      .order_by(users_per_item.desc(), by_id)
                                      .limit(bindparam("n", literal_execute=False)))
        self._resources_counted = self._compile(select(func.count()).select_from(resources))
        self._resource_ids = self._compile(select(resources.c.id))

    def _compile(self, statement):
        compiled = statement.compile(dialect=self.engine.dialect)
        names = compiled.positiontup if compiled.positional else None
        defaults = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
        return str(compiled), names, defaults  # defaults hold e.g. SQLite's OFFSET 0

    def _bind(self, query, **values) -> tuple[str, tuple | dict]:
        """The compiled SQL and its parameters in the driver's style (``?`` tuple or ``%(name)s`` dict)."""
        sql, names, defaults = query
        values = {**defaults, **values}
        return sql, tuple(values[name] for name in names) if names is not None else values

    def _connection(self):
        conn = getattr(self._local, "connection", None)
        if conn is None or conn.closed:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._local.connection = conn
        return conn

    def _execute(self, sql: str, params) -> list[tuple]:
        cursor = self._connection().connection.driver_connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def _rows(self, query, **values) -> list[tuple]:
        sql, params = self._bind(query, **values)
        driver_error = self.engine.dialect.loaded_dbapi.Error
        with database_errors(self.engine):
            try:
                return self._execute(sql, params)
            except driver_error as error:
                # A dropped connection (server restart, idle timeout): reconnect and retry the read once.
                conn = self._local.connection
                if not self.engine.dialect.is_disconnect(error, conn.connection.dbapi_connection, None):
                    raise _database_error(self.engine, _first_line(error), error)  # noqa: B904 - chain set there
                conn.invalidate()
                conn.close()
                try:
                    return self._execute(sql, params)
                except driver_error as again:
                    raise _database_error(self.engine, _first_line(again), again)  # noqa: B904

    def items_of(self, user_id: str) -> list[str]:
        """The user's items in time order, oldest first (repeats kept)."""
        return [str(row[0]) for row in self._rows(self._all_items, user=str(user_id))]

    def latest_items_of(self, user_id: str, count: int) -> list[str]:
        """The user's ``count`` latest interactions' items, newest first."""
        return [str(row[0]) for row in self._rows(self._latest, user=str(user_id), n=count)]

    def popular(self, limit: int) -> list[tuple[str, int]]:
        return [(str(i), int(n)) for i, n in self._rows(self._popular, n=limit)]

    def resource_count(self) -> int:
        """Rows in ``resources``: one cheap query that tells a server when to look for new ones."""
        return int(self._rows(self._resources_counted)[0][0])

    def resource_ids(self) -> list[str]:
        return [str(row[0]) for row in self._rows(self._resource_ids)]

    def resource_texts(self, ids: list[str], chunk: int = 500) -> dict[str, str]:
        """id -> ``interactions.resource_text`` of each of ``ids`` found in ``resources`` (a database made
        before descriptions existed gives titles)."""
        r, found = resources.c, {}
        with database_errors(self.engine):
            conn = self._connection()
            if not hasattr(self, "_has_description"):
                self._has_description = "description" in {c["name"] for c in sa_inspect(conn).get_columns("resources")}
            description = r.description if self._has_description else type_coerce(None, Text)
            for start in range(0, len(ids), chunk):
                rows = conn.execute(select(r.id, r.title, description).where(r.id.in_(ids[start:start + chunk])))
                found |= {str(item): resource_text(title, text) for item, title, text in rows}
        return found
