"""The embedded default (SQLite database, kombu's SQLite broker, one worker, beat) keeps up:
a burst of service tasks clears in seconds and the broker queue returns to empty, with beat
ticking all the while, the way `make run` runs it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select, text

from certflow.bootstrap import build_engine
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.store.models import Job
from tests.integration.topology import Topology, wait_for
from tests.support import FLOW_DIR, Harness
from worker.app import make_app, make_publisher

pytestmark = pytest.mark.integration

BURST = 100


@pytest.fixture
def embedded(sqlite_url: str) -> Iterator[tuple[Harness, Topology]]:
    settings = get_settings()
    assert settings.broker_url.startswith("sqla+sqlite")
    harness = Harness(build_engine(make_publisher(make_app(settings))))
    # beat at its production interval: its ticks share the queue with the jobs
    topology = Topology(settings.var_dir, {"CERTFLOW_BEAT_INTERVAL_SECONDS": "2"})
    try:
        yield harness, topology
    finally:
        topology.stop(wait=False)


def _broker_rows(visible_only: bool) -> int:
    broker = create_engine(get_settings().broker_url.removeprefix("sqla+"))
    try:
        with broker.connect() as conn:
            if not conn.dialect.has_table(conn, "kombu_message"):
                return 0
            where = " WHERE visible = 1" if visible_only else ""
            return int(conn.execute(text(f"SELECT count(*) FROM kombu_message{where}")).scalar_one())
    finally:
        broker.dispose()


def _unfinished() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Job).where(Job.status != "done")) or 0)


def test_one_worker_clears_a_burst_of_service_tasks_and_the_queue_drains(
        embedded: tuple[Harness, Topology]) -> None:
    h, topology = embedded
    h.engine.deploy(h.staff, FLOW_DIR)
    topology.worker(concurrency=1)
    topology.beat()
    wait_for(lambda: _broker_rows(False) > 0, what="beat's first tick", topology=topology)
    began = time.monotonic()
    for i in range(BURST):
        h.engine.start(h.staff, "flow", f"B{i}", {"key": f"B{i}"})
    wait_for(lambda: _unfinished() == 0, timeout=120, what="the burst to clear", topology=topology)
    cleared = time.monotonic() - began
    print(f"embedded: {BURST} service tasks cleared in {cleared:.1f} s")
    assert cleared < 30, f"{BURST} service tasks took {cleared:.1f} s on one embedded worker"
    # Nothing left behind on the broker, and what was delivered does not pile up.
    wait_for(lambda: _broker_rows(True) == 0, what="the broker queue to drain", topology=topology)
    time.sleep(5)  # a few more beat ticks
    assert _broker_rows(True) <= 1
    wait_for(lambda: _broker_rows(False) < 20, timeout=15, what="delivered messages to be cleaned up",
             topology=topology)
    assert sorted({t.element_id for t in h.engine.inbox(h.staff)}) == ["review"]
