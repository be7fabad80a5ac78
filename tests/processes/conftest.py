"""The process tier: a ``driver`` fixture on both tiers (in-process jobs on SQLite; a real
Celery worker on PostgreSQL + Redis), with every process in processes/ deployed and the usual
people present. Each test's instances feed the branch-coverage check (test_zz_coverage.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from certflow.bootstrap import build_engine
from certflow.settings import get_settings
from tests.integration.topology import Topology
from tests.processes import coverage
from tests.processes.driver import PROCESSES, Driver
from tests.support import Harness
from worker.app import make_app, make_publisher

ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}


@pytest.fixture(params=["inprocess-sqlite", pytest.param("worker-postgres-redis", marks=pytest.mark.integration)])
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Driver]:
    topology = None
    if request.param == "inprocess-sqlite":
        request.getfixturevalue("sqlite_url")
        harness = Harness(build_engine())
    else:
        request.getfixturevalue("pg_url")
        request.getfixturevalue("redis_url")
        harness = Harness(build_engine(make_publisher(make_app(get_settings()))))
        topology = Topology(get_settings().var_dir)
        topology.worker()
        topology.beat()
    d = Driver(harness, topology)
    harness.engine.deploy(harness.staff, PROCESSES)
    d.person("cas", ["candidate"], address=ADDRESS)
    d.person("olga", ["office"], staff=True)
    d.person("mila", ["mentor"])
    d.person("kees", ["committee"])
    d.person("cato", ["certifier"], staff=True)
    d.person("cor", ["coordinator"], staff=True)
    try:
        yield d
        coverage.record(harness.engine)
    finally:
        if topology:
            topology.stop()
