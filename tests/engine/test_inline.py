"""Chained service tasks on the worker: database-only handlers run inside the worker's advance
(one transaction for the effect and the task), outside ones keep their job. The chain diagram
is start -> a, b (database) -> c (outside) -> d (database) -> review."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Definition
from tests.support import CHAIN_DIR, Harness, db_effects as _effects, job_states as _jobs



def test_deploy_records_which_tasks_run_inline(chain: Harness) -> None:
    with session_scope() as s:
        elements = s.scalars(select(Definition.elements).where(Definition.process_id == "chain")).one()
    assert {e: elements[e]["inline"] for e in "abcd"} == {"a": True, "b": True, "c": False, "d": True}


def test_a_worker_runs_the_chain_in_two_jobs_with_each_effect_once(chain: Harness) -> None:
    h = chain
    instance_id = h.engine.start(h.staff, "chain", "K1", {"key": "K1"}).id
    # The web's advance only writes the job: workers run handlers.
    assert _jobs() == [("a", "queued")] and _effects() == []
    [first] = h.published
    assert h.engine.run_job(first.job_id) == "done"
    # a and b ran in that one advance; c (outside effects) waits for its own job.
    assert _effects() == ["a-K1", "b-K1"] and _jobs() == [("a", "done"), ("c", "queued")]
    h.run_jobs()
    assert _effects() == ["a-K1", "b-K1", "d-K1"]
    assert _jobs() == [("a", "done"), ("c", "done")]  # four service tasks, two jobs
    assert [t.element_id for t in h.engine.inbox(h.staff)] == ["review"]
    assert h.engine.run_job(first.job_id) == "ignored:done"  # a redelivery changes nothing
    assert _effects() == ["a-K1", "b-K1", "d-K1"]
    with session_scope() as s:
        completed = s.scalars(select(AuditEvent.element_id).where(
            AuditEvent.instance_id == instance_id, AuditEvent.action == "service_completed")).all()
    assert sorted(completed) == ["a", "b", "c", "d"]
    data = h.engine.instance(h.staff, instance_id).data
    assert (data["rb"]["value"], data["rd"]["value"]) == ("b-K1", "d-K1")


def test_a_failing_database_handler_leaves_no_effect_and_retries_as_a_job(
        harness: Harness, tmp_path: Path) -> None:
    h = harness
    target = tmp_path / "procs"
    shutil.copytree(CHAIN_DIR, target)
    bpmn = target / "chain" / "chain.bpmn"
    text = bpmn.read_text()
    bpmn.write_text(text.replace('id="test/db_effect" resultVariable="rb"', 'id="test/db_fail" resultVariable="rb"'))
    h.engine.deploy(h.staff, target)
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published
    assert h.engine.run_job(first.job_id) == "done"
    # b failed inline: rolled back to its savepoint (no effect), its job takes over.
    assert _effects() == ["a-K1"] and _jobs() == [("a", "done"), ("b", "queued")]
    b_job = h.published[-1].job_id
    assert h.engine.run_job(b_job) == "retry"
    assert _effects() == ["a-K1"] and _jobs() == [("a", "done"), ("b", "failed"), ("b", "queued")]
    with session_scope() as s:
        deferred = s.scalars(select(AuditEvent.action).where(AuditEvent.element_id == "b")).all()
    assert "service_deferred" in deferred and "service_failed" in deferred
