"""The backend's interaction tables through SQLAlchemy; a SQLite file by default.

Tables and columns follow Neo Alexandria's backend: ``users``, ``resources``
and ``user_interactions`` (``user_id``, ``resource_id``, ``interaction_type``,
``interaction_strength``, ``interaction_timestamp``, ``is_positive``), indexed
on (``user_id``, ``resource_id``). Any SQLAlchemy URL works; a plain path
means a SQLite file. SQLite and PostgreSQL (``postgresql+psycopg://...``) are
tested and give the same results.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pandas as pd
from sqlalchemy import (
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
    bindparam,
    create_engine,
    delete,
    distinct,
    func,
    insert,
    select,
    type_coerce,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from neo_ml import paths
from neo_ml.data.interactions import interactions_frame, parse_interaction
from neo_ml.errors import DatabaseError, DataFormatError

# Strength above which the backend counts an interaction as positive.
POSITIVE_THRESHOLD = 0.4

metadata = MetaData()
users = Table("users", metadata, Column("id", String(64), primary_key=True),
              Column("username", String(255)))
resources = Table("resources", metadata, Column("id", String(64), primary_key=True),
                  Column("title", String(1024)))
user_interactions = Table(
    "user_interactions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("resource_id", String(64), ForeignKey("resources.id", ondelete="CASCADE"), nullable=False),
    Column("interaction_type", String(50), nullable=False, default="view"),
    Column("interaction_strength", Float, nullable=False, default=0.0),
    Column("interaction_timestamp", DateTime(timezone=True), nullable=False),
    Column("is_positive", Integer, nullable=False, default=1),
    Index("idx_user_interactions_user_resource", "user_id", "resource_id"),
    Index("idx_user_interactions_timestamp", "interaction_timestamp"),
    # Serving reads one user's items in time order; this index makes that a range scan, no sort.
    Index("idx_user_interactions_user_time", "user_id", "interaction_timestamp", "id"),
)


@contextlib.contextmanager
def database_errors(engine: Engine):
    """SQLAlchemy's and the driver's errors as one-line ``DatabaseError`` naming the database."""
    try:
        yield
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise DatabaseError(f"{database_name(engine)}: {message}") from error


def database_name(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def default_database_url() -> str:
    return f"sqlite:///{paths.data_dir() / 'neo_alexandria.db'}"


def is_database_url(text: str) -> bool:
    try:
        make_url(text)
    except ArgumentError:
        return False
    return "://" in text


def connect(url: str | Path | Engine | None = None, create: bool = True) -> Engine:
    """An engine for ``url`` (URL, SQLite path or engine); creates the tables when asked."""
    if isinstance(url, Engine):
        engine = url
    else:
        url = str(url) if url is not None else default_database_url()
        if not is_database_url(url):
            url = f"sqlite:///{Path(url).expanduser().resolve()}"
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
    if create:
        with database_errors(engine):
            metadata.create_all(engine)
    return engine


def import_interactions(engine: Engine, frame: pd.DataFrame, replace: bool = False,
                        titles: dict[str, str] | None = None) -> int:
    """Write a normalised interactions frame into the tables, in one transaction.

    Users and resources are added as needed. With ``replace`` the existing
    interactions are deleted first (users and resources stay). On any error
    nothing is written. Returns the number of interactions inserted.
    """
    stamps = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
    missing = stamps.isna().to_numpy()
    if missing.any():  # psycopg would write NaT as a date in the year 48113
        raise DataFormatError("null value", source="interactions", record=int(missing.argmax()), field="timestamp")
    stamps = stamps.dt.to_pydatetime()
    strength = frame["implicit_rating"].to_numpy(float)
    rows = [
        {"user_id": u, "resource_id": i, "interaction_type": t, "interaction_strength": float(s),
         "interaction_timestamp": ts, "is_positive": int(s > POSITIVE_THRESHOLD or s == 1.0)}
        for u, i, t, s, ts in zip(frame["user_id"], frame["item_id"], frame["interaction_type"],
                                  strength, stamps, strict=True)
    ]
    with database_errors(engine), engine.begin() as conn:
        known_users = set(conn.scalars(select(users.c.id)))
        known_items = set(conn.scalars(select(resources.c.id)))
        new_users = sorted(set(frame["user_id"]) - known_users)
        new_items = sorted(set(frame["item_id"]) - known_items)
        if new_users:
            conn.execute(insert(users), [{"id": u, "username": u} for u in new_users])
        if new_items:
            conn.execute(insert(resources), [{"id": i, "title": (titles or {}).get(i)} for i in new_items])
        if replace:
            conn.execute(delete(user_interactions))
        if rows:
            conn.execute(insert(user_interactions), rows)
    return len(rows)


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
                    raise DatabaseError(f"{database_name(self.engine)}: {error}") from error
                conn.invalidate()
                conn.close()
                try:
                    return self._execute(sql, params)
                except driver_error as again:
                    raise DatabaseError(f"{database_name(self.engine)}: {again}") from again

    def items_of(self, user_id: str) -> list[str]:
        """The user's items in time order, oldest first (repeats kept)."""
        return [str(row[0]) for row in self._rows(self._all_items, user=str(user_id))]

    def latest_items_of(self, user_id: str, count: int) -> list[str]:
        """The user's ``count`` latest interactions' items, newest first."""
        return [str(row[0]) for row in self._rows(self._latest, user=str(user_id), n=count)]

    def popular(self, limit: int) -> list[tuple[str, int]]:
        return [(str(i), int(n)) for i, n in self._rows(self._popular, n=limit)]
