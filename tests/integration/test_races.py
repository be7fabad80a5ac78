"""Races on PostgreSQL, many rounds each: what two people (or a person and a payment) doing
something at the same moment must never produce.

* the same task claimed and completed by two users at once: one wins, the other gets a clear
  conflict, the task is completed once;
* two parallel branches (the two assessors) finishing at the same moment: the join continues
  exactly once, and the instance is never corrupted;
* a payment landing while the instance is reaching its wait (message buffering): delivered
  exactly once, never lost;
* one job delivered to two workers at once (a redelivery, the sweep): run once, and the one
  that waited for the instance sees the job finished, whatever finished it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from certflow.bootstrap import build_engine
from certflow.engine.errors import CertflowError
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Instance, Job, Message
from tests.support import FLOW_DIR, Harness

pytestmark = pytest.mark.integration

ROUNDS = 200
PARALLEL_DIR = Path(__file__).parent / "data"


@pytest.fixture
def pg(pg_url: str) -> Harness:
    h = Harness(build_engine())
    h.engine.deploy(h.staff, FLOW_DIR)
    h.engine.deploy(h.staff, PARALLEL_DIR)
    return h


def _together(fns: list[Callable[[], Any]]) -> list[Any]:
    """Run the functions in threads released by one barrier; a CertflowError is a result."""
    barrier, results = threading.Barrier(len(fns)), [None] * len(fns)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fns[i]()
        except CertflowError as exc:
            results[i] = type(exc).__name__

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _review(h: Harness, instance_id: str) -> str:
    [task] = [t.id for t in h.engine.instance(h.staff, instance_id).open_tasks if t.element_id == "review"]
    return task


def _count(action: str, element: str | None = None) -> Counter[str]:
    with session_scope() as s:
        query = select(AuditEvent.instance_id).where(AuditEvent.action == action)
        if element:
            query = query.where(AuditEvent.element_id == element)
        return Counter(s.scalars(query))


def _statuses(process_id: str) -> Counter[str]:
    with session_scope() as s:
        return Counter(s.scalars(select(Instance.status).where(Instance.process_id == process_id)))


@pytest.mark.timeout(600)
def test_one_task_claimed_and_completed_by_two_users_at_once(pg: Harness) -> None:
    ann, bob = pg.user("ann", ["office"], staff=True), pg.user("bob", ["office"], staff=True)
    ids = [pg.engine.start(pg.staff, "flow", f"C{i}", {"key": f"C{i}"}).id for i in range(ROUNDS)]
    pg.run_jobs(rounds=ROUNDS)
    tasks = {i: _review(pg, i) for i in ids}  # per instance: the inbox shows a page at a time

    def claim_and_complete(who: Any, task_id: str) -> str:
        pg.engine.claim(who, task_id)
        pg.engine.complete(who, task_id, {"approved": False})
        return who.username

    outcomes = Counter()
    for instance_id in ids:
        results = _together([lambda w=w: claim_and_complete(w, tasks[instance_id]) for w in (ann, bob)])
        winners = [r for r in results if r in ("ann", "bob")]
        assert len(winners) == 1 and set(results) - set(winners) <= {"Conflict", "Forbidden", "NotFound"}, results
        outcomes.update(r if r not in ("ann", "bob") else "won" for r in results)
    assert outcomes["won"] == ROUNDS
    completions = _count("task_completed_by_user")
    assert set(completions.values()) == {1} and len(completions) == ROUNDS
    assert _statuses("flow") == {"completed": ROUNDS}


@pytest.mark.timeout(600)
def test_two_parallel_branches_finishing_together_join_once(pg: Harness) -> None:
    first, second = pg.user("ann", ["assessor"]), pg.user("bob", ["assessor"])
    ids = [pg.engine.start(pg.staff, "parallel", f"P{i}", {"score_count": 0}).id for i in range(ROUNDS)]
    for instance_id in ids:
        branch = {t.element_id: t.id for t in pg.engine.instance(pg.staff, instance_id).open_tasks}
        results = _together([lambda: pg.engine.complete(first, branch["assess_a"], {"score": 7}),
                             lambda: pg.engine.complete(second, branch["assess_b"], {"score": 8})])
        assert not [r for r in results if isinstance(r, str)], results  # both complete: different tasks
    joins = _count("completed", "after_join")
    assert len(joins) == ROUNDS and set(joins.values()) == {1}, joins.most_common(3)
    assert _statuses("parallel") == {"completed": ROUNDS}
    for instance_id in ids[:20]:  # the saved state loads and reads as a finished instance
        view = pg.engine.instance(pg.staff, instance_id)
        assert view.status == "completed" and view.data["joined"] == 1 and not view.open_tasks


@pytest.mark.timeout(600)
def test_a_payment_racing_the_wait_is_delivered_exactly_once(pg: Harness) -> None:
    rounds = ROUNDS // 4
    ids = [pg.engine.start(pg.staff, "flow", f"M{i}", {"key": f"M{i}"}).id for i in range(rounds)]
    pg.run_jobs(rounds=rounds)
    tasks = {i: _review(pg, i) for i in ids}
    for n, instance_id in enumerate(ids):
        ref = pg.engine.instance(pg.staff, instance_id).data["ref"]
        _together([
            lambda: pg.engine.complete(pg.staff, tasks[instance_id], {"approved": True}),
            lambda: pg.engine.deliver_message(pg.staff, "paid", {"amount": n}, {"ref": ref},
                                              ttl=timedelta(days=60)),
        ])
    # Promptly, not via beat's pass: whichever of the two commits last delivers.
    received = _count("message_received")
    assert len(received) == rounds and set(received.values()) == {1}, received.most_common(3)
    assert _statuses("flow") == {"completed": rounds}
    with session_scope() as s:
        left = s.scalar(select(func.count()).select_from(Message).where(Message.status == "buffered"))
    assert left == 0


def _queued_jobs() -> list[int]:
    with session_scope() as s:
        return list(s.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.id)))


@pytest.mark.timeout(600)
def test_one_job_run_by_two_workers_at_once_runs_once(pg: Harness) -> None:
    rounds = ROUNDS // 4
    for i in range(rounds):
        pg.engine.start(pg.staff, "flow", f"J{i}", {"key": f"J{i}"})
    jobs = _queued_jobs()
    assert len(jobs) == rounds
    for job_id in jobs:
        results = _together([lambda: pg.engine.run_job(job_id), lambda: pg.engine.run_job(job_id)])
        assert sorted(results) == ["done", "ignored:done"], results
    completed = _count("service_completed")
    assert len(completed) == rounds and set(completed.values()) == {1}
    with session_scope() as s:
        assert set(s.scalars(select(Job.status).where(Job.id.in_(jobs)))) == {"done"}


def test_a_job_finished_while_its_run_waited_for_the_instance_is_left_as_it_is(pg: Harness) -> None:
    """The run's one statement locks the instance, then reads the job: having waited for
    another advance of the instance that finished the job, it sees the job finished (the row
    as committed, not as it was when the statement began), and that advance could write the
    job's row while the run waited (no deadlock)."""
    instance_id = pg.engine.start(pg.staff, "flow", "L1", {"key": "L1"}).id
    [job_id] = _queued_jobs()
    outcome: list[str] = []
    with session_scope() as other:  # another advance of the instance, holding its lock
        other.execute(text("SELECT id FROM instances WHERE id = :id FOR UPDATE"), {"id": instance_id})
        run = threading.Thread(target=lambda: outcome.append(pg.engine.run_job(job_id)))
        run.start()
        run.join(0.5)
        assert run.is_alive()  # waiting for the instance
        other.execute(text("SET LOCAL lock_timeout = '5s'"))
        other.execute(text("UPDATE jobs SET status = 'failed' WHERE id = :id"), {"id": job_id})
    run.join(10)
    assert outcome == ["ignored:failed"]
    with session_scope() as s:
        assert s.get(Job, job_id).status == "failed"  # type: ignore[union-attr]


def test_the_sweep_passes_over_a_job_being_run_without_waiting_for_it(pg: Harness) -> None:
    pg.engine.start(pg.staff, "flow", "S1", {"key": "S1"})
    [job_id] = _queued_jobs()
    with session_scope() as s:  # its publish was lost: due for the sweep
        s.execute(text("UPDATE jobs SET published_at = NULL WHERE id = :id"), {"id": job_id})
    with session_scope() as run:  # a worker running it holds its row
        run.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": job_id})
        assert pg.engine.sweep_jobs() == 0
    assert pg.engine.sweep_jobs() == 1
