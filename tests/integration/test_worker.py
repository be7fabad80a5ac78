"""Integration tier: a real Celery worker and beat as separate processes, on both paths —
embedded (SQLite + kombu's SQLite broker) and production (PostgreSQL + Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from certflow.bootstrap import build_engine
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.store.models import Job
from tests.integration.topology import Topology, wait_for
from tests.support import FLOW_DIR, Harness
from worker.app import make_app, make_publisher

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "production"])
def stack(request: pytest.FixtureRequest) -> Iterator[tuple[Harness, Topology]]:
    if request.param == "embedded":
        request.getfixturevalue("sqlite_url")
    else:
        request.getfixturevalue("pg_url")
        request.getfixturevalue("redis_url")
    settings = get_settings()
    harness = Harness(build_engine(make_publisher(make_app(settings))))
    topology = Topology(settings.var_dir)
    try:
        yield harness, topology
    finally:
        topology.stop(wait=False)


def _open_tasks(h: Harness) -> list[str]:
    return [t.element_id for t in h.engine.inbox(h.staff)]


def test_worker_runs_jobs_and_beat_fires_timers(stack: tuple[Harness, Topology]) -> None:
    h, topology = stack
    h.engine.deploy(h.staff, FLOW_DIR)
    topology.worker()
    topology.beat()
    instance_id = h.engine.start(h.staff, "flow", "K1", {"key": "K1"}).id
    wait_for(lambda: _open_tasks(h) == ["review"], what="the worker to finish make_ref", topology=topology)
    h.advance_clock_only = True
    from certflow.clock import CLOCK, parse_duration

    with session_scope() as s:
        CLOCK.advance(s, parse_duration("P8D"), allowed=True)
    # beat (a separate process) sees the moved clock, fires the reminder; the worker runs it
    wait_for(lambda: any(j.element_id == "remind" and j.status == "done" for j in h.jobs()),
             what="beat to fire the reminder and the worker to run it", topology=topology)
    review = h.engine.inbox(h.staff)[0]
    h.engine.complete(h.staff, review.id, {"approved": True})
    ref = h.engine.instance(h.staff, instance_id).data["ref"]
    h.engine.deliver_message(h.staff, "paid", {"amount": 1}, correlation={"ref": ref})
    assert h.engine.instance(h.staff, instance_id).status == "completed"


def test_killed_worker_loses_nothing(stack: tuple[Harness, Topology]) -> None:
    h, topology = stack
    h.engine.deploy(h.staff, FLOW_DIR)
    h.engine.publisher = None  # the broker never hears of these: only the sweep can save them
    ids = [h.engine.start(h.staff, "flow", f"K{i}", {"key": f"K{i}"}).id for i in range(5)]
    topology.worker("w1")
    topology.kill("w1")
    topology.worker("w2")
    topology.beat()
    from certflow.clock import CLOCK, parse_duration

    with session_scope() as s:
        CLOCK.advance(s, parse_duration("PT1M"), allowed=True)  # past the sweep's patience
    wait_for(lambda: len([t for t in _open_tasks(h) if t == "review"]) == 5,
             what="every job to be swept and run", topology=topology)
    with session_scope() as s:
        statuses = s.scalars(select(Job.status)).all()
    assert sorted(statuses) == ["done"] * 5
    assert len(ids) == 5
