"""Concurrency on PostgreSQL: one advance of an instance at a time, no lost update, and two
schedulers never fire the same timer twice."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from certflow.bootstrap import build_engine
from certflow.engine.errors import CertflowError
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Instance, Job
from tests.support import FLOW_DIR, Harness

pytestmark = pytest.mark.integration


@pytest.fixture
def pg(pg_url: str) -> Harness:
    h = Harness(build_engine())
    h.engine.deploy(h.staff, FLOW_DIR)
    return h


def _together(n: int, fn) -> list[object]:
    barrier, results = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except CertflowError as exc:
            results[i] = type(exc).__name__

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_eight_simultaneous_completions_of_one_task_complete_it_once(pg: Harness) -> None:
    instance_id = pg.engine.start(pg.staff, "flow", "K1", {"key": "K1"}).id
    pg.run_jobs()
    [task] = pg.engine.inbox(pg.staff)
    results = _together(8, lambda i: pg.engine.complete(pg.staff, task.id, {"approved": False}))
    outcomes = Counter("ok" if not isinstance(r, str) else r for r in results)
    assert outcomes["ok"] == 1 and sum(outcomes.values()) == 8, outcomes
    with session_scope() as s:
        completions = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == instance_id, AuditEvent.action == "task_completed_by_user"))
    assert completions == 1
    assert pg.engine.instance(pg.staff, instance_id).status == "completed"


def test_different_advances_of_one_instance_all_land(pg: Harness) -> None:
    """A message and a timer check racing on one instance: both applied, none lost."""
    instance_id = pg.engine.start(pg.staff, "flow", "K2", {"key": "K2"}).id
    pg.run_jobs()
    [task] = pg.engine.inbox(pg.staff)
    pg.engine.complete(pg.staff, task.id, {"approved": True})
    ref = pg.engine.instance(pg.staff, instance_id).data["ref"]
    results = _together(2, lambda i: pg.engine.deliver_message(pg.staff, "paid", {"n": i}, correlation={"ref": ref})
                        if i == 0 else pg.engine.fire_due_timers())
    assert results[0] == [instance_id]
    assert pg.engine.instance(pg.staff, instance_id).status == "completed"


def test_a_writer_that_skips_the_lock_cannot_overwrite_a_newer_state(pg: Harness) -> None:
    instance_id = pg.engine.start(pg.staff, "flow", "K3", {"key": "K3"}).id
    with session_scope() as stale:
        old = stale.get(Instance, instance_id)
        assert old is not None
        pg.run_jobs()  # another transaction advances and commits a newer version
        old.state = {}
        with pytest.raises(StaleDataError):
            stale.flush()
        stale.rollback()
    assert pg.engine.inbox(pg.staff)  # the newer state stands


def test_two_schedulers_fire_each_timer_once(pg: Harness) -> None:
    for i in range(10):
        pg.engine.start(pg.staff, "flow", f"T{i}", {"key": f"T{i}"})
    pg.run_jobs()
    with session_scope() as s:
        from certflow.clock import CLOCK, parse_duration

        CLOCK.advance(s, parse_duration("P8D"), allowed=True)
    fired = _together(2, lambda i: pg.engine.fire_due_timers())
    assert sum(fired) == 10  # between them, every due instance once
    with session_scope() as s:
        reminders = s.scalar(select(func.count()).select_from(Job).where(Job.element_id == "remind"))
    assert reminders == 10


def test_three_ticks_firing_batches_side_by_side_fire_each_timer_once(pg: Harness, monkeypatch) -> None:
    monkeypatch.setattr(pg.engine.settings, "timer_batch", 4)
    for i in range(24):
        pg.engine.start(pg.staff, "flow", f"T{i}", {"key": f"T{i}"})
    pg.run_jobs()
    with session_scope() as s:
        from certflow.clock import CLOCK, parse_duration

        CLOCK.advance(s, parse_duration("P8D"), allowed=True)
    fired = _together(3, lambda i: pg.engine.fire_due_timers(limit=None))
    assert sum(fired) == 24, fired  # SKIP LOCKED: each batch takes instances no other holds
    with session_scope() as s:
        reminders = s.scalars(select(Job.instance_id).where(Job.element_id == "remind")).all()
    assert len(reminders) == len(set(reminders)) == 24


def test_two_drainers_route_each_message_once(pg: Harness) -> None:
    from certflow.engine.messaging import emit
    from certflow.store.models import Message
    from tests.support import MESSAGING_DIR

    pg.engine.deploy(pg.staff, MESSAGING_DIR)
    with session_scope() as s:
        for i in range(20):
            emit(s, "hello", {"business_key": f"M{i}", "key": str(i)}, pg.engine.now())
    _together(2, lambda i: pg.engine.drain_messages())
    with session_scope() as s:
        receivers = s.scalars(select(Instance.business_key).where(Instance.process_id == "receiver")).all()
        statuses = Counter(s.scalars(select(Message.status)).all())
    assert sorted(receivers) == sorted(f"M{i}" for i in range(20))  # each once
    assert statuses == {"started": 20}


def test_eight_people_claiming_one_task_at_once_get_it_once(pg: Harness) -> None:
    """The task row is locked while a claim checks it: one person gets the task, the other
    seven are told it is taken (none believes they have it while another does)."""
    pg.engine.start(pg.staff, "flow", "K9", {"key": "K9"})
    pg.run_jobs()
    [task] = pg.engine.inbox(pg.staff)
    assert task.candidate_group
    people = [pg.user(f"p{i}", [task.candidate_group]) for i in range(8)]
    results = _together(8, lambda i: pg.engine.claim(people[i], task.id))
    outcomes = Counter("ok" if not isinstance(r, str) else r for r in results)
    assert outcomes == {"ok": 1, "Conflict": 7}, outcomes
    [winner] = [people[i].username for i, r in enumerate(results) if not isinstance(r, str)]
    assert pg.engine.task(pg.staff, task.id).assignee == winner
    with session_scope() as s:
        claims = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.task_id == task.id, AuditEvent.action == "claimed"))
    assert claims == 1
