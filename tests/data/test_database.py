"""The database layer on SQLite and on PostgreSQL: the tests run on both backends.

PostgreSQL comes from ``NEO_ML_TEST_POSTGRES_URL``: a server URL whose database the
tests may use to create and drop their own databases, e.g.
``postgresql+psycopg://neo@127.0.0.1:5432/postgres``. Without it a throwaway server is
started from the PostgreSQL binaries (``initdb``, ``pg_ctl`` on PATH or under
``/usr/lib/postgresql/*/bin``) and stopped at the end. Without either, the PostgreSQL
tests fail and say so. Each PostgreSQL test gets a fresh database, dropped afterwards;
it uses an ICU ``en-US`` collation where the server has one and a session time zone
other than UTC, so that ordering and time zone slips show.
"""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql as pgsql
from sqlalchemy import func, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError

from neo_ml import NCFService
from neo_ml.data import db as database
from neo_ml.data.interactions import read_interactions_json
from neo_ml.errors import DatabaseError, DataFormatError

SERVING_INDEX = "idx_user_interactions_user_time_item"  # holds the items too: no table lookups
USER_INDEXES = {SERVING_INDEX, "idx_user_interactions_user_resource"}
COLUMNS = ["user_id", "item_id", "timestamp", "interaction_type", "implicit_rating"]
T0 = 1_700_000_000


# -- PostgreSQL: the server is conftest's postgres_server; a fresh database per test -----------------


def _create_database(admin, name: str) -> None:
    with admin.connect() as conn:
        try:  # a linguistic collation, as production servers often have: ids must still sort by code point
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' "
                              "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"))
        except DBAPIError:  # before PostgreSQL 15, or built without ICU
            conn.execute(text(f"CREATE DATABASE {name}"))
        conn.execute(text(f"ALTER DATABASE {name} SET timezone TO 'America/St_Johns'"))  # UTC-03:30 / -02:30


@pytest.fixture
def make_engine(request, tmp_path):
    """``make_engine("sqlite" | "postgresql")``: an engine on a fresh, empty database with the tables."""
    dropped = []

    def make(backend: str):
        if backend == "sqlite":
            return database.connect(tmp_path / f"neo_{uuid.uuid4().hex[:8]}.db")
        admin = request.getfixturevalue("postgres_server")
        name = f"neo_ml_test_{uuid.uuid4().hex[:12]}"
        _create_database(admin, name)
        engine = database.connect(admin.url.set(database=name).render_as_string(hide_password=False))
        dropped.append((admin, name, engine))
        return engine

    yield make
    for admin, name, engine in dropped:
        engine.dispose()
        with admin.connect() as conn:  # FORCE: the stores' per-thread connections are still open
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, make_engine):
    return make_engine(request.param)


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["user_id", "timestamp", "item_id"]).reset_index(drop=True)[COLUMNS]


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table))


# -- import and read ---------------------------------------------------------------------------------
def test_import_read_round_trip(engine, synthetic_frame):
    assert database.import_interactions(engine, synthetic_frame) == len(synthetic_frame)
    back = database.read_interactions(engine)
    pd.testing.assert_frame_equal(_sorted(back), _sorted(synthetic_frame), check_dtype=False)
    rating = synthetic_frame["implicit_rating"]
    positive = synthetic_frame[(rating > database.POSITIVE_THRESHOLD) | (rating == 1.0)]
    pd.testing.assert_frame_equal(_sorted(database.read_interactions(engine, positive_only=True)),
                                  _sorted(positive), check_dtype=False)
    assert _count(engine, database.users) == synthetic_frame["user_id"].nunique()
    assert _count(engine, database.resources) == synthetic_frame["item_id"].nunique()

    # The stored instants are right in SQL too (not only after the round trip), is_positive is 0/1.
    t = database.user_interactions.c
    epoch = (func.extract("epoch", t.interaction_timestamp) if engine.dialect.name == "postgresql"
             else func.strftime("%s", t.interaction_timestamp))
    with engine.connect() as conn:
        stored = conn.execute(select(t.user_id, t.resource_id, epoch, t.is_positive)).all()
        if engine.dialect.name == "postgresql":
            kind = conn.scalar(text("SELECT data_type FROM information_schema.columns WHERE "
                                    "table_name = 'user_interactions' AND column_name = 'interaction_timestamp'"))
            assert kind == "timestamp with time zone"
    expected = {(u, i): (ts, int(p)) for u, i, ts, p in zip(
        synthetic_frame["user_id"], synthetic_frame["item_id"], synthetic_frame["timestamp"],
        synthetic_frame.index.isin(positive.index), strict=True)}
    assert {(u, i): (int(float(ts)), p) for u, i, ts, p in stored} == expected
    assert {type(p) for *_, p in stored} == {int}


def test_replace_mode_swaps_the_interactions_only(engine, synthetic_frame):
    first, second = synthetic_frame.iloc[:100], synthetic_frame.iloc[100:150]
    database.import_interactions(engine, first)
    database.import_interactions(engine, second)
    assert len(database.read_interactions(engine)) == 150
    assert database.import_interactions(engine, second, replace=True) == 50
    pd.testing.assert_frame_equal(_sorted(database.read_interactions(engine)), _sorted(second), check_dtype=False)
    both = pd.concat([first, second])
    assert _count(engine, database.users) == both["user_id"].nunique()  # users and resources stay
    assert _count(engine, database.resources) == both["item_id"].nunique()


def test_failed_import_writes_nothing(engine, synthetic_frame):
    database.import_interactions(engine, synthetic_frame.head(10))
    counts = _count(engine, database.users), _count(engine, database.resources)
    # New users and items, then a NOT NULL violation on the last row: after the users, the resources
    # and the replace's DELETE were sent, so only the transaction's roll-back keeps the old state.
    broken = synthetic_frame.iloc[10:20].assign(user_id=lambda f: "new_" + f["user_id"],
                                                item_id=lambda f: "new_" + f["item_id"])
    broken["interaction_type"] = broken["interaction_type"].astype(object)
    broken.iloc[-1, broken.columns.get_loc("interaction_type")] = None
    with pytest.raises(DatabaseError, match=r"(?i)not[ -]null"):
        database.import_interactions(engine, broken, replace=True)
    pd.testing.assert_frame_equal(_sorted(database.read_interactions(engine)), _sorted(synthetic_frame.head(10)),
                                  check_dtype=False)
    assert (_count(engine, database.users), _count(engine, database.resources)) == counts
    # A missing timestamp is refused before anything is sent (psycopg would store NaT as year 48113).
    with pytest.raises(DataFormatError, match="record 2, field 'timestamp': null value"):
        database.import_interactions(engine, synthetic_frame.head(5).assign(
            timestamp=[T0, T0, None, T0, T0]), replace=True)
    assert len(database.read_interactions(engine)) == 10


# -- InteractionStore --------------------------------------------------------------------------------
STORE_ROWS = [  # user, item, time: u1's history out of order; ids with case and digits that collations reorder
    ("u1", "b", T0 + 30), ("u1", "a", T0 + 10), ("u1", "c", T0 + 20), ("u1", "a", T0 + 40),
    ("u1", "d", T0 + 40),  # same time as the repeat of "a" just before: insertion order breaks the tie
    ("u2", "a", T0), ("u2", "B", T0 + 1), ("u2", "b", T0 + 2),
    ("u3", "a", T0), ("u3", "B", T0 + 1), ("u3", "c", T0 + 2), ("u3", "item_10", T0 + 3), ("u3", "item_1a", T0 + 4),
    *[("u4", "d", T0 + n) for n in range(6)],  # many rows, one user: popularity counts users, not rows
    ("u5", "item_1a", T0),
]


def _store_frame():
    return _frame([(u, i, t, "view", 0.5) for u, i, t in STORE_ROWS])


def test_store_reads_in_order(engine):
    database.import_interactions(engine, _store_frame())
    store = database.InteractionStore(engine)
    assert store.items_of("u1") == ["a", "c", "b", "a", "d"]  # oldest first, repeats kept
    assert store.latest_items_of("u1", 3) == ["d", "a", "b"]  # newest first
    assert store.latest_items_of("u1", 50) == ["d", "a", "b", "c", "a"]
    assert store.items_of("nobody") == [] and store.latest_items_of("nobody", 3) == []
    # Distinct users per item; ties by id in code point order ("B" < "b" < "c"; "item_10" < "item_1a").
    assert store.popular(7) == [("a", 3), ("B", 2), ("b", 2), ("c", 2), ("d", 2), ("item_1a", 2), ("item_10", 1)]
    assert store.popular(2) == [("a", 3), ("B", 2)]


def test_store_reads_fresh_rows_outside_any_transaction(engine):
    database.import_interactions(engine, _store_frame())
    store = database.InteractionStore(engine)
    assert store.items_of("u5") == ["item_1a"]
    raw = store._local.connection.connection.driver_connection
    if engine.dialect.name == "postgresql":
        assert raw.autocommit and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    else:
        assert raw.isolation_level is None and not raw.in_transaction
    database.import_interactions(engine, _frame([("u5", "a", T0 + 5, "view", 1.0)]))
    assert store.items_of("u5") == ["item_1a", "a"]
    assert store.popular(1) == [("a", 4)]
    seen = []  # another thread reads on its own connection
    thread = threading.Thread(target=lambda: seen.append((store.latest_items_of("u5", 1),
                                                          store._local.connection)))
    thread.start()
    thread.join()
    assert seen[0][0] == ["a"] and seen[0][1] is not store._local.connection


def test_store_replaces_a_dropped_connection(engine):
    database.import_interactions(engine, _store_frame())
    store = database.InteractionStore(engine)
    history = store.items_of("u1")
    store._local.connection.connection.driver_connection.close()  # gone under the store
    assert store.items_of("u1") == history
    if engine.dialect.name == "postgresql":  # the server ends the session, as on a restart
        pid = store._local.connection.connection.driver_connection.info.backend_pid
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
        assert store.latest_items_of("u1", 2) == ["d", "a"]
        assert store._local.connection.connection.driver_connection.info.backend_pid != pid


# -- NCFService on either backend --------------------------------------------------------------------
def test_service_gives_the_same_results_on_both_backends(make_engine, trained_checkpoint, synthetic_json):
    frame = read_interactions_json(synthetic_json).interactions
    services = {}
    for backend in ("sqlite", "postgresql"):
        engine = make_engine(backend)
        database.import_interactions(engine, frame)
        services[backend] = NCFService(db=engine, model_path=trained_checkpoint)
    users = sorted(frame["user_id"].unique())[::15] + ["brand_new_user"]
    for user in users:
        results = {backend: (svc.recommend(user, top_k=10), svc.recommend(user, top_k=10, exclude_seen=False))
                   for backend, svc in services.items()}
        assert results["sqlite"] == results["postgresql"], user
        unseen, with_seen = results["sqlite"]
        assert len(unseen) == len(with_seen) == 10
        seen = set(frame.loc[frame["user_id"] == user, "item_id"])
        assert not {item for item, _ in unseen} & seen


# -- the seen-items queries use the user index ---------------------------------------------------------
def _bulk_load(engine, n_users=5_000, n_items=2_000, n_rows=200_000) -> None:
    """Random interactions, written fast: COPY on PostgreSQL, the driver's executemany on SQLite; then ANALYZE."""
    rng = np.random.default_rng(0)
    user_ids = [f"user_{n:05d}" for n in range(n_users)]
    item_ids = [f"item_{n:05d}" for n in range(n_items)]
    seconds = T0 + rng.integers(0, 180 * 86_400, n_rows)
    # UTC times as the text SQLAlchemy stores in SQLite ("2023-11-14 22:13:20.000000"); "+00" added for COPY.
    stamps = np.char.replace(np.datetime_as_string(seconds.astype("datetime64[s]"), unit="us"), "T", " ")
    rows = list(zip(np.array(user_ids)[rng.integers(0, n_users, n_rows)].tolist(),
                    np.array(item_ids)[rng.integers(0, n_items, n_rows)].tolist(), stamps.tolist(), strict=True))
    columns = "user_id, resource_id, interaction_type, interaction_strength, interaction_timestamp, is_positive"
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        if engine.dialect.name == "postgresql":
            with driver.cursor() as cursor:
                for table, ids in (("users", user_ids), ("resources", item_ids)):
                    with cursor.copy(f"COPY {table} (id) FROM STDIN") as copy:
                        copy.write("".join(f"{key}\n" for key in ids))
                with cursor.copy(f"COPY user_interactions ({columns}) FROM STDIN") as copy:
                    copy.write("".join(f"{user}\t{item}\tview\t0.5\t{stamp}+00\t1\n" for user, item, stamp in rows))
        else:
            driver.executemany("INSERT INTO users (id) VALUES (?)", [(key,) for key in user_ids])
            driver.executemany("INSERT INTO resources (id) VALUES (?)", [(key,) for key in item_ids])
            driver.executemany(f"INSERT INTO user_interactions ({columns}) VALUES (?, ?, 'view', 0.5, ?, 1)", rows)
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE user_interactions"))


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def _postgres_plans(engine, sql: str, params: dict) -> dict[str, list[dict]]:
    """The custom plan (values bound, as on a query's first runs) and the generic plan (as psycopg's
    prepared statements get after five runs), each as a list of plan nodes."""
    names = list(params)
    numbered = sql
    for n, name in enumerate(names, 1):
        numbered = numbered.replace(f"%({name})s", f"${n}")
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cursor:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            custom = cursor.fetchone()[0][0]["Plan"]
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE seen_items AS {numbered}")
            values = pgsql.SQL(", ").join(pgsql.Literal(params[name]) for name in names)
            cursor.execute(pgsql.SQL("EXPLAIN (FORMAT JSON) EXECUTE seen_items({})").format(values))
            generic = cursor.fetchone()[0][0]["Plan"]
            cursor.execute("DEALLOCATE seen_items")
            cursor.execute("RESET plan_cache_mode")
        raw.rollback()
    finally:
        raw.close()
    return {"custom": list(_plan_nodes(custom)), "generic": list(_plan_nodes(generic))}


def _describe(nodes: list[dict]) -> str:
    return " > ".join(node["Node Type"] + (f" using {node['Index Name']}" if "Index Name" in node else "")
                      + (f" on {node['Relation Name']}" if "Relation Name" in node else "") for node in nodes)


def test_seen_items_queries_use_the_user_index(engine):
    _bulk_load(engine)
    store = database.InteractionStore(engine)
    user = "user_02500"
    assert len(store.items_of(user)) > 10
    for name, query, values in (("items_of", store._all_items, {"user": user}),
                                ("latest_items_of", store._latest, {"user": user, "n": 20})):
        sql, params = store._bind(query, **values)  # the exact SQL and parameters the store runs
        if engine.dialect.name == "postgresql":
            for kind, nodes in _postgres_plans(engine, sql, params).items():
                print(f"\npostgresql {name} ({kind} plan): {_describe(nodes)}")
                assert not [n for n in nodes if n["Node Type"] == "Seq Scan"
                            and n.get("Relation Name") == "user_interactions"], _describe(nodes)
                assert [n for n in nodes if n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
                        and n.get("Index Name") in USER_INDEXES], _describe(nodes)
        else:
            raw = engine.raw_connection()
            try:
                details = [row[3] for row in raw.driver_connection.execute("EXPLAIN QUERY PLAN " + sql, params)]
            finally:
                raw.close()
            print(f"\nsqlite {name}: {' | '.join(details)}")
            assert not [d for d in details if d.startswith("SCAN user_interactions")], details
            covering = f"SEARCH user_interactions USING COVERING INDEX {SERVING_INDEX} "
            assert [d for d in details if d.startswith(covering)], details


def test_an_older_database_gains_the_serving_index_and_keeps_its_rows(engine):
    rows = [("u1", "i1", T0), ("u1", "i2", T0 + 1), ("u2", "i1", T0 + 2)]
    database.import_interactions(engine, _frame([(*row, "view", 1.0) for row in rows]))
    with engine.begin() as conn:  # as a database made before the index held the items
        conn.exec_driver_sql(f"DROP INDEX {SERVING_INDEX}")
        conn.exec_driver_sql("CREATE INDEX idx_user_interactions_user_time ON user_interactions "
                             "(user_id, interaction_timestamp, id)")
    database.connect(engine)  # as the next import does
    names = {index["name"] for index in sa_inspect(engine).get_indexes("user_interactions")}
    assert SERVING_INDEX in names and "idx_user_interactions_user_time" not in names
    assert database.InteractionStore(engine).items_of("u1") == ["i1", "i2"]
    assert len(database.read_interactions(engine)) == 3


# -- resources and their text ------------------------------------------------------------------------
def _resources(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "title", "description"])


def test_resources_are_upserted_beside_the_interactions_and_read_back(engine):
    frame = _frame([("u1", "r1", 100, "view", 1.0), ("u1", "r2", 200, "view", 1.0)])
    database.import_interactions(engine, frame, resources_frame=_resources(
        [("r1", "Dune", "A desert planet."), ("r3", "", "Only a description.")]))
    database.import_resources(engine, _resources([("r1", "Dune (1965)", ""), ("r4", "New arrival", "")]))
    read = database.read_resources(engine).set_index("item_id")
    assert read.loc["r1"].tolist() == ["Dune (1965)", "A desert planet."]  # an empty field keeps the stored one
    assert read.loc["r3"].tolist() == ["", "Only a description."]
    assert read.loc["r4"].tolist() == ["New arrival", ""]
    assert "r2" not in read.index  # a resource with no text at all is not listed
    assert _count(engine, database.resources) == 4


def test_an_older_database_gains_the_description_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    engine = database.connect(path)
    database.import_interactions(engine, _frame([("u1", "r1", 100, "view", 1.0)]), titles={"r1": "Old title"})
    with engine.begin() as conn:  # as a database made before descriptions existed
        conn.execute(text("ALTER TABLE resources DROP COLUMN description"))
    engine.dispose()
    serving = database.connect(path, create=False)  # serving never alters a database: titles only
    assert database.read_resources(serving).values.tolist() == [["r1", "Old title", ""]]
    serving.dispose()
    upgraded = database.connect(path)
    database.import_resources(upgraded, _resources([("r1", "", "Now described.")]))
    assert database.read_resources(upgraded).values.tolist() == [["r1", "Old title", "Now described."]]
    assert _count(upgraded, database.user_interactions) == 1


def test_the_serving_store_counts_lists_and_reads_resource_texts(engine):
    frame = _frame([("u1", "r1", 100, "view", 1.0), ("u1", "r2", 200, "view", 1.0)])
    database.import_interactions(engine, frame, resources_frame=_resources([("r1", "Dune", "A desert planet.")]))
    store = database.InteractionStore(engine)
    assert store.resource_count() == 2 and sorted(store.resource_ids()) == ["r1", "r2"]
    database.import_resources(engine, _resources([("r3", "New arrival", "")]))
    assert store.resource_count() == 3  # an autocommit read sees the import at once
    assert store.resource_texts(["r1", "r3", "r2", "missing"]) == {
        "r1": "Dune. A desert planet.", "r3": "New arrival", "r2": ""}
    assert store.resource_texts([f"r{n}" for n in range(1, 4)], chunk=1).keys() == {"r1", "r2", "r3"}


# -- imports beside serving: 64-bit ids, a killed import, reads during an import ------------------------
def _url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_interaction_ids_are_64_bit(engine):
    database.import_interactions(engine, _frame([("u1", "r1", 100, "view", 1.0)]))
    past_32_bits = 2**31 + 5
    with engine.begin() as conn:  # as a database that has seen two billion interactions
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('user_interactions', 'id'), {past_32_bits})"))
        else:
            conn.execute(text(f"UPDATE user_interactions SET id = {past_32_bits}"))
    database.import_interactions(engine, _frame([("u1", "r2", 200, "view", 1.0), ("u2", "r1", 300, "view", 1.0)]))
    with engine.connect() as conn:
        ids = sorted(conn.execute(select(database.user_interactions.c.id)).scalars())
    assert len(ids) == 3 and ids[-1] > 2**31 and len(set(ids)) == 3
    assert database.InteractionStore(engine).items_of("u1") == ["r1", "r2"]


def test_an_older_postgresql_database_gains_64_bit_interaction_ids(make_engine):
    engine = make_engine("postgresql")
    database.import_interactions(engine, _frame([("u1", "r1", 100, "view", 1.0), ("u1", "r2", 200, "view", 1.0)]))
    with engine.begin() as conn:  # as the tables were made before the ids were 64-bit
        conn.execute(text("ALTER TABLE user_interactions ALTER COLUMN id TYPE INTEGER"))
        conn.execute(text("ALTER SEQUENCE user_interactions_id_seq AS INTEGER"))
    upgraded = database.connect(_url(engine))
    with upgraded.connect() as conn:
        kind = conn.execute(text("SELECT data_type FROM information_schema.columns WHERE table_name = "
                                 "'user_interactions' AND column_name = 'id'")).scalar()
        sequence = conn.execute(text("SELECT data_type FROM pg_sequences WHERE sequencename = "
                                     "'user_interactions_id_seq'")).scalar()
    assert (kind, sequence) == ("bigint", "bigint")
    assert database.InteractionStore(upgraded).items_of("u1") == ["r1", "r2"]
    upgraded.dispose()


def _big_frame(tag: str, rows: int, user: str | None = None, items: list[str] | None = None) -> pd.DataFrame:
    """``rows`` interactions of new users on new resources (ids with ``tag``), and, with ``user``, that
    user's interactions with ``items``: one import's worth of work that takes a while."""
    rng = np.random.default_rng(0)
    extra = [(user, item, T0 + 10 + n, "view", 1.0) for n, item in enumerate(items or [])]
    return _frame([(f"{tag}u{u}", f"{tag}i{i}", T0 + n, "view", 1.0)
                   for n, (u, i) in enumerate(rng.integers(0, 2_000, (rows, 2)).tolist())] + extra)


def _import_announcing(url: str, tag: str, rows: int, queue, user=None, items=None) -> None:
    """A process's import that says "writing" once its transaction has begun, and "done" after it committed."""
    engine = database.connect(url)
    begin = database._write_transaction

    @contextmanager
    def announced(target):
        with begin(target) as conn:
            queue.put("writing")
            yield conn

    database._write_transaction = announced
    database.import_interactions(engine, _big_frame(tag, rows, user, items))
    queue.put("done")


def _counts(engine) -> tuple[int, int, int]:
    return tuple(_count(engine, table) for table in (database.users, database.resources, database.user_interactions))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_killed_import_leaves_the_database_as_it_was(make_engine, synthetic_frame, backend):
    import multiprocessing

    engine = make_engine(backend)
    database.import_interactions(engine, synthetic_frame)
    before = _counts(engine)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=_import_announcing, args=(_url(engine), "killed", 300_000, queue))
    worker.start()
    assert queue.get(timeout=120) == "writing"
    threading.Event().wait(1.0)  # well inside the 300,000 rows' insert
    worker.kill()
    worker.join(timeout=60)
    assert worker.exitcode == -9 and queue.empty()  # killed mid-transaction, not after it committed
    assert _counts(engine) == before
    if backend == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    database.import_interactions(engine, _frame([("after", "r-after", T0, "view", 1.0)]))  # no lock left behind
    assert _counts(engine) == tuple(n + 1 for n in before)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_serving_answers_from_before_or_after_an_import_while_it_runs(make_engine, trained_checkpoint,
                                                                     synthetic_frame, backend):
    import multiprocessing

    engine = make_engine(backend)
    database.import_interactions(engine, synthetic_frame)
    service = NCFService(db=engine, model_path=trained_checkpoint)
    user = sorted(synthetic_frame["user_id"].unique())[0]
    before = service.recommend(user, top_k=10)
    taken = [item for item, _ in before[:3]]  # the import adds these to the user's items: they leave the list
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=_import_announcing,
                             args=(_url(engine), "beside", 100_000, queue, user, taken))
    worker.start()
    assert queue.get(timeout=120) == "writing"
    during = []
    while worker.is_alive() and queue.empty():
        during.append(service.recommend(user, top_k=10))
    worker.join(timeout=120)
    assert worker.exitcode == 0 and queue.get(timeout=10) == "done"
    after = service.recommend(user, top_k=10)
    assert not {item for item, _ in after} & set(taken) and after != before
    assert during and all(answer in (before, after) for answer in during)  # answered while it wrote
