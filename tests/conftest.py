"""Fixtures: a fresh database per test (SQLite file, or PostgreSQL for integration) and an
Engine wired to it."""

from __future__ import annotations

import gc
import os
import queue
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from certflow.bootstrap import build_engine, create_schema
from certflow.bootstrap import engine as process_engine
from certflow.clock import CLOCK
from certflow.settings import reset_settings
from certflow.store.db import reset_engines
from tests.support import IN_CI, MUTATION_RUN, PG_ADMIN, REDIS, Harness

# Every save in the tests checks that the finished-task cache gives the plain serializer's
# state (certflow.engine.spiff.FinishedTaskCache); mutation runs skip the double work.
if not MUTATION_RUN:
    os.environ.setdefault("CERTFLOW_VERIFY_STATE", "1")


# -- mutation runs (bench/mutation.py) ---------------------------------------------------------
def pytest_collection_finish(session: pytest.Session) -> None:
    """mutmut collects the tests once in its fork server and forks one run per mutant from it:
    what is loaded here (the table schema, fonts, fee tables, mapped classes) every mutant's
    run has for free instead of loading it again. Frozen, the inherited objects are left out
    of every garbage collection in the forked runs (pytest alone collects five times at the
    end of each): collecting them would cost time and copy every page the fork shares."""
    if MUTATION_RUN and session.config.option.collectonly:
        if "tests.handlers.test_invoicing" in sys.modules:
            from tests.handlers.test_invoicing import warm_up

            warm_up()
        gc.collect()
        gc.freeze()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a mutation run the database-server tests go last: a mutant is usually killed by a
    quick test, and mutmut stops at the first failure.

    ``make test`` runs the suite in parallel processes (pytest-xdist, ``--dist loadgroup``);
    the tests that must share a process are grouped here (``xdist_group``)."""
    if MUTATION_RUN:
        items.sort(key=lambda item: item.get_closest_marker("integration") is not None)
    if WALKS in os.environ:  # a process of a parallel run: the controller checks the coverage
        coverage_test = [item for item in items if item.nodeid.startswith(COVERAGE_TEST)]
        if coverage_test:
            items[:] = [item for item in items if item not in coverage_test]
            config.hook.pytest_deselected(items=coverage_test)
            config.stash[CHECK_WALKS] = True
    for item in items:
        group = xdist_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def xdist_group(item: pytest.Item) -> str | None:
    """The group of tests ``item`` must run with in one process, if any:

    - a module whose tests share a module-wide fixture (an app server, a browser's app, a
      fuzzing schema): one process starts it once instead of one per process;
    - a browser test module: its tests share the session's app and Chromium, so they are
      kept together rather than each process starting its own for a single test."""
    path = item.nodeid.split("::", 1)[0]
    fixtures = getattr(item, "_fixtureinfo", None)
    shared = fixtures is not None and any(
        defs[-1].scope in ("module", "package") for defs in fixtures.name2fixturedefs.values())
    if shared or path.startswith("tests/browser/"):
        return path
    return None


# -- branch coverage of processes/ in a parallel run -------------------------------------------
# Each process test records the branches its instances walked (tests/processes/coverage.py);
# run alone, test_zz_coverage checks them after the others. In a parallel run (pytest-xdist)
# they are walked in several processes: each saves what it walked in the directory named by
# WALKS, and the controller checks the union when the run ends, failing the run (with the
# table) where a branch was not walked. The coverage test itself is deselected there.
WALKS = "CERTFLOW_TEST_BRANCH_WALKS"
COVERAGE_TEST = "tests/processes/test_zz_coverage.py::"
CHECK_WALKS = pytest.StashKey[bool]()
WALK_REPORT = pytest.StashKey[str]()
DROP_REPORT = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        os.environ[WALKS] = tempfile.mkdtemp(prefix="certflow-walks-")


@pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down (their drops queued)
def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.integration import topology

    topology.reap()  # the workers and beats the tests stopped without waiting
    if "url" in _EMPTY:
        pg_drop(_EMPTY.pop("url"))
    if "sqlite" in _EMPTY:
        shutil.rmtree(Path(_EMPTY.pop("sqlite")).parent, ignore_errors=True)
    failed = pg_drops_finish()
    if failed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        session.config.stash[DROP_REPORT] = "\n".join(failed)
    walks = os.environ.get(WALKS)
    if not walks:
        return
    from tests.processes import coverage
    from tests.processes.driver import PROCESSES

    config = session.config
    if hasattr(config, "workerinput"):
        coverage.save(Path(walks) / f"{config.workerinput['workerid']}.json",
                      config.stash.get(CHECK_WALKS, False))
        return
    saved = sorted(Path(walks).glob("*.json"))
    check = coverage.merge(saved)
    shutil.rmtree(walks, ignore_errors=True)
    if not check:
        return
    table, missing = coverage.report(coverage.required(PROCESSES))
    report = "branch coverage of processes/ (gateway flows and boundary events):\n" + table
    if missing:
        report += "\nFAILED: branches no test walks:\n" + "\n".join(
            f"  {pid}: {sorted(items)}" for pid, items in missing.items())
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    config.stash[WALK_REPORT] = report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if DROP_REPORT in config.stash:
        terminalreporter.write_sep("=", "FAILED: test databases not dropped")
        terminalreporter.write_line(config.stash[DROP_REPORT])
    if WALK_REPORT in config.stash:
        terminalreporter.write_sep("=", "branch coverage of processes/")
        terminalreporter.write_line(config.stash[WALK_REPORT])


# -- environment ---------------------------------------------------------------------------
# The empty databases the tests' own are copied from, made once per run: "sqlite" (a file) and
# "url" (a PostgreSQL database); removed at the end of the run (pytest_sessionfinish).
_EMPTY: dict[str, str] = {}


def settings_env(var: Path, database_url: str, redis_url: str = "") -> dict[str, str]:
    """The settings a test runs with (its processes too), by environment variable."""
    return {
        "CERTFLOW_ENV": "test",
        "CERTFLOW_VAR_DIR": str(var),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CERTFLOW_JOB_BACKOFF_SECONDS": "1",
        # Password hashing at full cost takes ~0.5 s; tests check the logic, not the cost.
        "CERTFLOW_ARGON2_TIME_COST": "1",
        "CERTFLOW_ARGON2_MEMORY_KIB": "1024",
    }


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    forget_database()
    CLOCK._offset = 0.0


def forget_database() -> None:
    """Drop what the process built from the settings in force: the settings, the database
    pools, and the process's engine (certflow.bootstrap.engine: what the pages, the API and a
    worker's jobs use, built once from the settings with its own sessions and settings). Kept,
    that engine went on reading and writing the database of whichever earlier test built it
    (a test that opened /inbox, say), and the next test's pages showed that database's rows.
    The real function, not a test's stand-in for it (monkeypatch undoes those after this)."""
    reset_settings()
    reset_engines()
    process_engine.cache_clear()


def _use(monkeypatch: pytest.MonkeyPatch, var: Path, database_url: str, redis_url: str = "") -> None:
    use_env(monkeypatch, settings_env(var, database_url, redis_url))


def _empty_sqlite() -> Path:
    """A SQLite file with every table and no rows, made once per run: copying it takes 0.5 ms,
    ``create_schema`` 50 ms, in each of several hundred tests."""
    if "sqlite" not in _EMPTY:
        folder = Path(tempfile.mkdtemp(prefix="certflow-empty-"))
        create_schema(f"sqlite:///{folder / 'empty.sqlite'}")
        reset_engines()  # closed: the file is complete
        _EMPTY["sqlite"] = str(folder / "empty.sqlite")
    return Path(_EMPTY["sqlite"])


@contextmanager
def sqlite_database(folder: Path, monkeypatch: pytest.MonkeyPatch, template: Path | None = None) -> Iterator[str]:
    """A SQLite database in ``folder``: empty tables (a copy of ``_empty_sqlite``), or a copy of
    ``template`` (a database file prepared once per run, see tests/processes/conftest.py)."""
    path = folder / "certflow.sqlite"
    url = f"sqlite:///{path}"
    template = template or _empty_sqlite()
    _use(monkeypatch, folder / "var", url)
    shutil.copyfile(template, path)
    try:
        yield url
    finally:
        forget_database()


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with sqlite_database(tmp_path, monkeypatch) as url:
        yield url


def service_or_fail(name: str, exc: Exception) -> None:
    if IN_CI:
        pytest.fail(f"{name} is required under CI=true but unreachable: {exc}")
    pytest.skip(f"{name} unreachable: {exc}")


def pg_create(template: str | None = None) -> str:
    """A new PostgreSQL database (its URL): empty, or a copy of the database ``template``."""
    name = f"certflow_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    except Exception as exc:  # noqa: BLE001
        service_or_fail("PostgreSQL", exc)
    finally:
        admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def pg_drop(url: str) -> None:
    """Drop the database at ``url``, in the background: on PostgreSQL 15 every DROP DATABASE
    waits for a forced checkpoint (dropdb), which took 0.2-2.5 s per test database while the
    suite writes, at the end of each of about a hundred tests. Nothing a test checks waits on
    it: each database has a name of its own. The run waits for the drops at its end
    (``pg_drops_finish``, from ``pytest_sessionfinish``) and fails if one failed."""
    if _DROPPER["thread"] is None:
        thread = threading.Thread(target=_drop_queued, name="pg-drop", daemon=True)
        thread.start()
        _DROPPER["thread"] = thread
    _DROPS.put(url.rsplit("/", 1)[1])


_DROPS: queue.Queue[str | None] = queue.Queue()
_DROPPER: dict[str, Any] = {"thread": None, "failed": []}


def _drop_queued() -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    while (name := _DROPS.get()) is not None:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except Exception as exc:  # noqa: BLE001  (reported at the end of the run)
            _DROPPER["failed"].append(f"{name}: {exc}")


def pg_drops_finish() -> list[str]:
    """Wait for the queued drops; the ones that failed."""
    thread = _DROPPER["thread"]
    if thread is not None:
        _DROPS.put(None)
        thread.join()
        _DROPPER["thread"] = None
    failed, _DROPPER["failed"] = _DROPPER["failed"], []
    return failed


def _empty_template() -> str:
    """A database with every table and no rows, made once per run (``create_schema``, 0.25-0.4 s
    on PostgreSQL) for the empty databases to be copied from (``CREATE DATABASE .. TEMPLATE``,
    0.1 s); dropped at the end of the run."""
    if "url" not in _EMPTY:
        url = pg_create()
        create_schema(url)
        reset_engines()  # no connection left to it: a copy needs the template to itself
        _EMPTY["url"] = url
    return _EMPTY["url"].rsplit("/", 1)[1]


@contextmanager
def pg_database(folder: Path, monkeypatch: pytest.MonkeyPatch, template: str | None = None,
                keep: bool = False) -> Iterator[str]:
    """A PostgreSQL database of its own: empty tables (a copy of ``_empty_template``), or a
    copy of the database ``template`` (prepared once per run, see tests/processes/conftest.py);
    dropped at the end unless ``keep``."""
    url = pg_create(template or _empty_template())
    _use(monkeypatch, folder / "var", url)
    try:
        yield url
    finally:
        forget_database()
        if not keep:
            pg_drop(url)


@pytest.fixture
def pg_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with pg_database(tmp_path, monkeypatch) as url:
        yield url


@pytest.fixture
def redis_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Redis, with a queue of this test's own: parallel runs on one Redis never share jobs."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        service_or_fail("Redis", exc)
    queue = f"certflow-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("REDIS_URL", REDIS)
    monkeypatch.setenv("CERTFLOW_QUEUE", queue)
    reset_settings()
    yield REDIS
    client.delete(queue)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest) -> str:
    """Both persistence paths; the PostgreSQL one is an integration test."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def harness(sqlite_url: str) -> Harness:
    h = Harness(build_engine())
    h.engine.publisher = h.published.extend
    return h

