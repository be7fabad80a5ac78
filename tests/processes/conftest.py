"""The process tier: a ``driver`` fixture on both tiers (in-process jobs on SQLite; a real
Celery worker on PostgreSQL + Redis), with every process in processes/ deployed and the usual
people present. Each test's instances feed the branch-coverage check (test_zz_coverage.py).

Deploying processes/ (parse, validate, render every e-mail template, start the schedules)
takes one to two seconds, and a hundred tests need the same result: it is done once per run
and tier, into a database that each test's database is then copied from (a file copy on
SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from certflow.bootstrap import build_engine
from certflow.engine.facade import Actor
from certflow.settings import get_settings, reset_settings
from certflow.store.db import reset_engines, session_scope
from certflow.store.models import Job
from tests.conftest import pg_create, pg_database, pg_drop, settings_env, sqlite_database, use_env
from tests.integration.topology import Topology
from tests.processes import coverage
from tests.processes.driver import PROCESSES, Driver
from tests.support import REDIS, Harness
from worker.app import make_app, make_publisher

ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}

# The usual people: username, groups, staff, extra account fields.
PEOPLE: list[tuple[str, list[str], bool, dict[str, Any]]] = [
    ("cas", ["candidate"], False, {"address": ADDRESS}),
    ("olga", ["office"], True, {}),
    ("mila", ["mentor"], False, {}),
    ("kees", ["committee"], False, {}),
    ("cato", ["certifier"], True, {}),
    ("cor", ["coordinator"], True, {}),
]


def _prepare(folder: Path, make: Any) -> Any:
    """Deploy processes/ and add the people in a database of the tier (``make`` opens it),
    and return what names it (file or database), with no connection left open to it."""
    with pytest.MonkeyPatch.context() as monkeypatch, make(folder, monkeypatch) as url:
        harness = Harness(build_engine())
        harness.engine.deploy(harness.staff, PROCESSES)
        for username, groups, staff, extra in PEOPLE:
            harness.user(username, groups, staff, **extra)
        with session_scope() as s:  # nothing for a worker to do yet: no job is left unpublished
            assert s.scalar(select(func.count()).select_from(Job)) == 0
        reset_engines()
    reset_settings()
    reset_engines()
    return url


@pytest.fixture(scope="session")
def prepared_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prepared-sqlite")
    _prepare(folder, sqlite_database)
    return folder / "certflow.sqlite"


@pytest.fixture(scope="session")
def prepared_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of the prepared PostgreSQL database (kept to the end of the run)."""
    folder = tmp_path_factory.mktemp("prepared-postgres")
    url = _prepare(folder, partial(pg_database, keep=True))
    yield url.rsplit("/", 1)[1]
    pg_drop(url)


class Stack:
    """A PostgreSQL database copied from the prepared one, a Redis queue of its own, and a
    Celery worker and beat started on them: what a process test on the production tier needs."""

    def __init__(self, template: str, folder: Path) -> None:
        self.url = pg_create(template)
        self.queue = f"certflow-test-{uuid.uuid4().hex[:12]}"
        self.env = {**settings_env(folder / "var", self.url, REDIS), "CERTFLOW_QUEUE": self.queue}
        (folder / "var").mkdir(parents=True)
        # The environment of the run, not of the test that happens to be running now.
        self.topology = Topology(folder / "var", self.env, base=BASE_ENV)
        self.topology.worker()
        self.topology.beat()

    def discard(self) -> None:
        self.topology.stop(wait=False)  # its own database and queue: nothing to wait for
        pg_drop(self.url)
        redis.Redis.from_url(REDIS).delete(self.queue)


# The environment the run started with (before any test changed it).
BASE_ENV = dict(os.environ)


@pytest.fixture(scope="session")
def stacks(prepared_postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Stack]]:
    """Hands out stacks, each started while the test before it ran: a worker and a beat take
    one to two seconds to start, which every PostgreSQL process test waited for."""
    ready: list[Stack] = []

    def take() -> Stack:
        stack = ready.pop() if ready else Stack(prepared_postgres, tmp_path_factory.mktemp("stack"))
        ready.append(Stack(prepared_postgres, tmp_path_factory.mktemp("stack")))
        return stack

    yield take
    for stack in ready:
        stack.discard()


@pytest.fixture(params=["inprocess-sqlite", pytest.param("worker-postgres-redis", marks=pytest.mark.integration)])
def driver(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Driver]:
    if request.param == "inprocess-sqlite":
        with sqlite_database(tmp_path, monkeypatch, request.getfixturevalue("prepared_sqlite")):
            yield from _drive(Harness(build_engine()), None)
        return
    request.getfixturevalue("redis_url")  # fails under CI=true when Redis is not there
    stack = request.getfixturevalue("stacks")()
    use_env(monkeypatch, stack.env)
    try:
        yield from _drive(Harness(build_engine(make_publisher(make_app(get_settings())))), stack.topology)
    finally:
        reset_engines()
        reset_settings()
        stack.discard()


def _drive(harness: Harness, topology: Topology | None) -> Iterator[Driver]:
    d = Driver(harness, topology)
    d.people.update({username: Actor(username, tuple(groups), staff) for username, groups, staff, _ in PEOPLE})
    yield d
    coverage.record(harness.engine)
