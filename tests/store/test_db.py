"""Pooled PostgreSQL connections: checked before use only after sitting idle or when the
server sent them something (certflow.store.db), and a connection the server dropped meanwhile
is replaced, not an error."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from certflow.settings import reset_settings
from certflow.store.db import get_engine, reset_engines

pytestmark = pytest.mark.integration


@pytest.fixture
def pings(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The engine for ``pg_url`` with a 0.3 s idle limit; the list collects one entry per ping."""
    monkeypatch.setenv("CERTFLOW_DB_PING_IDLE_SECONDS", "0.3")
    reset_settings()
    reset_engines()
    dialect = get_engine(pg_url).dialect
    seen: list[int] = []
    real = dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        seen.append(1)
        return real(dbapi_conn)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return seen


def _backend_pid(url: str) -> int:
    with get_engine(url).connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_used_a_moment_ago_is_not_pinged(pg_url: str, pings: list[int]) -> None:
    first = _backend_pid(pg_url)
    for _ in range(5):
        assert _backend_pid(pg_url) == first  # the pool's one connection, reused
    assert pings == []


def test_an_idle_connection_is_pinged_before_use(pg_url: str, pings: list[int]) -> None:
    first = _backend_pid(pg_url)
    time.sleep(0.4)
    assert _backend_pid(pg_url) == first
    assert pings == [1]


def _terminate(pg_url: str, pid: int) -> None:
    """The server ends that backend (as a restart or an administrator would)."""
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    finally:
        admin.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_without_an_error(pg_url: str, pings: list[int]) -> None:
    dropped = _backend_pid(pg_url)
    _terminate(pg_url, dropped)
    time.sleep(0.4)
    assert _backend_pid(pg_url) != dropped  # no error: the check found it gone, the pool reconnected
    assert pings == [1]


def test_a_connection_the_server_dropped_a_moment_after_its_use_is_replaced_without_an_error(
        pg_url: str, pings: list[int]) -> None:
    """Its socket has the server's goodbye to read: that is seen without a round trip."""
    dropped = _backend_pid(pg_url)
    _terminate(pg_url, dropped)
    time.sleep(0.05)  # the goodbye's way to this process
    assert _backend_pid(pg_url) != dropped
    assert pings == [1]


def test_a_job_whose_connection_is_gone_without_a_sign_runs_on_a_new_one(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection dropped without a word (a firewall: here the check is told the server said
    nothing) fails at the job's first statement; the worker runs the job again at once
    (worker.app), on the pool's new connections."""
    import certflow.store.db

    monkeypatch.setattr(certflow.store.db, "_server_spoke", lambda *_: False)
    import certflow.bootstrap
    from certflow.bootstrap import build_engine
    from tests.support import CHAIN_DIR
    from tests.support import Harness, job_states
    from worker import app as worker_app

    h = Harness(build_engine())
    h.engine.publisher = h.published.extend
    h.engine.deploy(h.staff, CHAIN_DIR)
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: h.engine)
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one() > 0
    finally:
        admin.dispose()
    assert worker_app.run_job(first.job_id) == "done"
    assert job_states() == [("a", "done"), ("c", "done")]


@pytest.mark.parametrize(("setting", "threshold"), [(None, 1), ("0", 0), ("off", None)])
def test_statements_are_prepared_on_the_server_as_configured(
        pg_url: str, monkeypatch: pytest.MonkeyPatch, setting: str | None, threshold: int | None) -> None:
    """``off`` is for a PgBouncer in transaction mode that cannot keep prepared statements."""
    if setting is not None:
        monkeypatch.setenv("CERTFLOW_DB_PREPARE_THRESHOLD", setting)
    reset_settings()
    reset_engines()
    with get_engine(pg_url).connect() as conn:
        assert conn.connection.dbapi_connection.prepare_threshold == threshold  # type: ignore[union-attr]
        for _ in range(3):
            conn.execute(text("SELECT count(*) FROM instances"))
        prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar_one()
    assert (prepared > 0) == (threshold is not None)
