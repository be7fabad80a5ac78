"""Fixtures for the email, certificate and register handler tests (imported explicitly, so
they do not collide with a conftest.py another test module may bring)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import StaticPool
from sqlalchemy.orm import Session

import certflow.store.all_models  # noqa: F401  (registers every table on Base.metadata)
from certflow.settings import Settings
from certflow.store.base import Base
from certflow.store.models import User
from handlers import HandlerContext

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


@cache
def _schema() -> tuple[Engine, sqlite3.Connection]:
    """Every table, created once per process (``create_all`` costs more than a whole handler
    test); each test's database starts as a copy of it."""
    template = sqlite3.connect(":memory:", check_same_thread=False)
    eng = create_engine("sqlite://", creator=lambda: template, poolclass=StaticPool)
    Base.metadata.create_all(eng)
    return eng, template


def _fresh_database() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    _schema()[1].backup(conn)
    return conn


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = create_engine("sqlite://", creator=_fresh_database)

    # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy issue BEGIN,
    # as certflow.store.db does for the real database.
    @event.listens_for(eng, "connect")
    def _no_pysqlite_transactions(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(eng, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, env="test", var_dir=tmp_path, smtp_host="")  # type: ignore[call-arg]


def add_user(session: Session, username: str, display_name: str, email: str = "",
             language: str = "nl", opt_out: bool = False) -> User:
    user = User(
        username=username, display_name=display_name,
        email=email or f"{username}@example.org", language=language,
        address={"street": "Stationsplein 1", "postal_code": "3511 ED", "city": "Utrecht",
                 "country": "NL"},
        newsletter_opt_out=opt_out,
        groups=["candidate"], created_at=NOW,
    )
    session.add(user)
    session.flush()
    return user


def make_ctx(session: Session, settings: Settings, key: str, now: datetime = NOW) -> HandlerContext:
    return HandlerContext(session=session, now=now, idempotency_key=key, settings=settings)
