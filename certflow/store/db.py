"""Engine and session factory, one per process and database URL.

SQLite is the embedded default: WAL mode and a busy timeout let web, worker and beat share
one file. PostgreSQL is production. Either way a unit of work is ``with session_scope() as s``.
"""

from __future__ import annotations

import json
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from certflow.settings import get_settings


class EncodedJSON(str):
    """JSON text already encoded, bound to a JSON column as it is (an instance's state, whose
    finished tasks' text is kept between saves: certflow.engine.spiff.state_json)."""


def json_serializer(value: Any) -> str:
    """The engine's JSON serializer: ``json.dumps``, except for text already encoded."""
    return value if isinstance(value, EncodedJSON) else json.dumps(value)


_ENGINES: dict[str, Engine] = {}
_FACTORIES: dict[str, sessionmaker[Session]] = {}


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    if url not in _ENGINES:
        _ENGINES[url] = _create(url)
    return _ENGINES[url]


# An execution option of a unit of work that never writes (Runtime.reading): on SQLite it
# begins without taking the write lock.
READ_ONLY = "certflow_read_only"


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               json_serializer=json_serializer)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let pysqlite not open transactions on its own; we issue BEGIN IMMEDIATE
            # ourselves so a writer takes the database lock up front (see locking.py).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # On the driver's connection: a statement with no parameters and no result needs
            # none of SQLAlchemy's execution path (paid once per unit of work otherwise).
            # A unit of work that only reads (``READ_ONLY``) takes no lock: in WAL mode it reads
            # a snapshot while a writer works, instead of queueing behind it for the lock.
            begin = "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"
            conn.connection.dbapi_connection.execute(begin)

        return engine
    settings = get_settings()
    engine = create_engine(url, pool_size=10, max_overflow=10, json_serializer=json_serializer,
                           connect_args={"prepare_threshold": settings.db_prepare_threshold})
    _ping_when_idle(engine, settings.db_ping_idle_seconds)
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only when it sat idle longer than ``idle_seconds``
    or the server has sent it something since its last use.

    SQLAlchemy's ``pool_pre_ping`` checks on every checkout: one more round trip per unit of
    work (24 per certification lifecycle, counted in one process on PostgreSQL). A connection
    that is waiting for nothing receives nothing, unless the server ends it (a restart, a failover,
    ``pg_terminate_backend``): then its socket turns readable with the server's goodbye or
    the end of the stream, which a zero-timeout poll sees without a round trip, and that
    connection is pinged. A connection dropped silently (a firewall, a cable) gives no sign:
    connections idle longer than ``idle_seconds`` are pinged for that, and within that time
    the first statement fails, SQLAlchemy replaces every connection of the pool, and the unit
    of work fails once (a worker runs its job again: worker.app). A failed ping raises
    DisconnectionError, and the pool connects afresh (the pool's documented way)."""
    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        # ``info`` lives as long as the driver's connection: a new one has no mark, and is alive.
        since = record.info.get("idle_since")
        if since is None or (time.monotonic() - since <= idle_seconds
                             and not _server_spoke(dbapi_conn, engine.dialect.loaded_dbapi.Error)):
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"a pooled connection is gone: {exc}") from exc


def _server_spoke(dbapi_conn: Any, driver_error: type[Exception]) -> bool:
    """Whether the socket of a connection that is waiting for nothing has something to read
    (a notice, or the server ending it): a poll with no wait, no round trip."""
    try:
        poller = select.poll()
        poller.register(dbapi_conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, driver_error):  # closed already: let the ping find out
        return True


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    url = url or get_settings().database_url
    if url not in _FACTORIES:
        _FACTORIES[url] = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    return _FACTORIES[url]


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def one_snapshot(session: Session) -> None:
    """Let the rest of ``session``'s transaction read one snapshot. On PostgreSQL (READ
    COMMITTED) each statement otherwise sees what committed before it began, so a view built
    from several reads (an instance, its queue entries, what it waits for) could mix the states
    before and after another process's advance. SQLite's transactions are snapshots already.
    Call it before the session's first statement; the pool resets the level on check-in."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def dialect_insert(session: Session) -> Any:
    """The INSERT of ``session``'s database, with ON CONFLICT (PostgreSQL and SQLite, the two
    certflow runs on, say it the same way)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def replace_row(session: Session, model: type[Any], row: dict[str, Any], key: str) -> None:
    """Insert ``row``, or overwrite the row with the same unique ``key`` in the same statement:
    a delete and an insert let two requests at once both insert, and the second broke the
    unique index (on PostgreSQL it waits for the first's commit, then overwrites it here)."""
    statement = dialect_insert(session)(model).values(**row)
    session.execute(statement.on_conflict_do_update(
        index_elements=[key], set_={name: statement.excluded[name] for name in row if name != key}))


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    with transaction(session_factory(url)) as session:
        yield session


def reset_engines() -> None:
    """Dispose every pool (tests switch databases; forked workers must not share sockets)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
    _FACTORIES.clear()
