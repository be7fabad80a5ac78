"""Engine and session factory, one per process and database URL.

SQLite is the embedded default: WAL mode and a busy timeout let web, worker and beat share
one file. PostgreSQL is production. Either way a unit of work is ``with session_scope() as s``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

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
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, json_serializer=json_serializer)


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
