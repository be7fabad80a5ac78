"""A worker keeps an instance's work in its own process: the jobs its advance writes for that
instance run next in the same worker (its live workflow is cached there), not round the
broker. They are committed outbox rows all the same, so a worker that dies before running them
loses nothing. The chain diagram is start -> a, b (database) -> c (outside) -> d (database)
-> review."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

import certflow.bootstrap
from certflow.engine.dto import JobMessage
from certflow.store.db import session_scope
from certflow.store.models import Instance
from tests.support import Harness, db_effects as _effects, job_states as _jobs, statements
from worker import app as worker_app



def test_the_worker_runs_the_instance_s_next_job_itself_and_the_broker_sees_one_message(
        chain: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = chain
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: h.engine)
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published  # the web's advance wrote a's job
    hits = h.engine.live_hits
    assert worker_app.run_job(first.job_id) == "done"
    # c's job (outside effects) ran in this worker right after a's, never through the broker.
    assert h.published == [first]
    assert _jobs() == [("a", "done"), ("c", "done")]
    assert _effects() == ["a-K1", "b-K1", "d-K1"]
    assert [t.element_id for t in h.engine.inbox(h.staff)] == ["review"]
    assert h.engine.live_hits >= hits + 2  # both advances found the workflow cached
    assert worker_app.run_job(first.job_id) == "ignored:done"  # a redelivery changes nothing
    assert _effects() == ["a-K1", "b-K1", "d-K1"]


def test_with_chaining_off_every_job_goes_through_the_broker(
        chain: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = chain
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: h.engine)
    monkeypatch.setattr(h.engine.settings, "job_chain_limit", 0)
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published
    assert worker_app.run_job(first.job_id) == "done"
    assert _jobs() == [("a", "done"), ("c", "queued")]
    assert [m.job_id for m in h.published[1:]] == [h.jobs()[1].id]  # c's job was published


def test_a_chained_job_the_worker_never_ran_is_swept_to_the_broker(chain: Harness) -> None:
    h = chain
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published
    kept: list[JobMessage] = []
    assert h.engine.run_job(first.job_id, chain=kept) == "done"
    assert len(kept) == 1 and h.published == [first]  # kept for this worker, not published
    # The worker dies here. The job is a committed row: the sweep publishes it.
    assert _jobs() == [("a", "done"), ("c", "queued")]
    h.advance("PT1M")
    assert h.engine.sweep_jobs() == 1
    assert h.published[-1].job_id == kept[0].job_id
    h.run_jobs()
    assert _effects() == ["a-K1", "b-K1", "d-K1"] and _jobs() == [("a", "done"), ("c", "done")]


NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" targetNamespace="http://bpmn.io/schema/bpmn"')


def _service(task_id: str, operator: str, incoming: str, outgoing: str) -> str:
    return (f'<bpmn:serviceTask id="{task_id}"><bpmn:extensionElements>'
            f'<spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="r_{task_id}"><spiffworkflow:parameters>'
            f'<spiffworkflow:parameter id="value" type="str" value="\'{task_id}-\' + key"/>'
            f'</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>'
            f'<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:serviceTask>')


# "notify": a database-only task, then a thrown "go" that starts "follow_up", whose first task
# has outside effects (its own job).
NOTIFY = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="defs_notify">
  <bpmn:message id="go" name="go"/>
  <bpmn:process id="notify" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    {_service("note", "test/db_effect", "f1", "f2")}
    <bpmn:intermediateThrowEvent id="throw_go"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="go"><bpmn:extensionElements><spiffworkflow:messagePayload>{{'business_key': 'F-' + key, 'key': key}}</spiffworkflow:messagePayload></bpmn:extensionElements></bpmn:messageEventDefinition>
    </bpmn:intermediateThrowEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="note"/>
    <bpmn:sequenceFlow id="f2" sourceRef="note" targetRef="throw_go"/>
    <bpmn:sequenceFlow id="f3" sourceRef="throw_go" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""
FOLLOW_UP = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="defs_follow_up">
  <bpmn:message id="go" name="go"/>
  <bpmn:process id="follow_up" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing><bpmn:messageEventDefinition messageRef="go"/></bpmn:startEvent>
    {_service("mail", "test/echo", "f1", "f2")}
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="mail"/>
    <bpmn:sequenceFlow id="f2" sourceRef="mail" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def notify(harness: Harness, tmp_path: Path) -> Harness:
    for name, text in (("notify", NOTIFY), ("follow_up", FOLLOW_UP)):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.bpmn").write_text(text)
    harness.engine.deploy(harness.staff, tmp_path)
    return harness


def _statuses(process_id: str) -> list[tuple[str, str]]:
    with session_scope() as s:
        return sorted(s.execute(select(Instance.business_key, Instance.status)
                                .where(Instance.process_id == process_id)).tuples().all())


def test_the_job_of_an_instance_a_worker_s_message_started_runs_in_that_worker(
        notify: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """note's job throws "go" after its commit; the worker routes it, starting follow_up, and
    runs follow_up's mail job next itself (the instance it just started is cached there),
    not round the broker."""
    h = notify
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: h.engine)
    h.engine.start(h.staff, "notify", "N1", {"key": "N1"})
    [first] = h.published  # the web's advance wrote note's job
    hits = h.engine.live_hits
    assert worker_app.run_job(first.job_id) == "done"
    assert h.published == [first]  # the broker saw no second message
    assert _jobs() == [("note", "done"), ("mail", "done")]
    assert _statuses("notify") == [("N1", "completed")] and _statuses("follow_up") == [("F-N1", "completed")]
    assert h.engine.live_hits >= hits + 1  # mail's advance found follow_up cached


def test_a_job_written_after_commit_beyond_the_chain_limit_goes_to_the_broker_at_once(
        notify: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for one job in the chain, the second started instance's job is published at
    once (the other workers take it, rather than wait behind this worker's chain), and every
    job still runs."""
    h = notify
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: h.engine)
    monkeypatch.setattr(h.engine.settings, "job_chain_limit", 1)
    h.engine.start(h.staff, "notify", "N1", {"key": "N1"})
    h.engine.start(h.staff, "notify", "N2", {"key": "N2"})
    first, second = h.published
    kept: list[JobMessage] = []
    assert h.engine.run_job(first.job_id, chain=kept) == "done"
    assert len(kept) == 1 and h.published == [first, second]  # N1's mail kept here
    assert h.engine.run_job(second.job_id, chain=kept) == "done"
    assert len(kept) == 1  # no room: N2's mail was published
    [published] = h.published[2:]
    assert {published.job_id, kept[0].job_id} == {j.id for j in h.jobs() if j.element_id == "mail"}
    assert _jobs() == [("note", "done"), ("note", "done"), ("mail", "queued"), ("mail", "queued")]
    h.run_jobs()
    assert _statuses("follow_up") == [("F-N1", "completed"), ("F-N2", "completed")]


def test_when_the_job_fails_after_its_commit_the_jobs_it_kept_go_to_the_broker(
        chain: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """a's advance committed (keeping c's job for this worker), then routing its messages
    failed: the task fails, and c's job is published at once, not found by the sweep later."""
    h = chain
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: h.engine)
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published

    def broken(*_: object, **__: object) -> int:
        raise RuntimeError("routing failed")

    monkeypatch.setattr(h.engine, "drain_messages", broken)
    with pytest.raises(RuntimeError):
        worker_app.run_job(first.job_id)
    assert _jobs() == [("a", "done"), ("c", "queued")]
    assert [m.job_id for m in h.published[1:]] == [h.jobs()[1].id]


@pytest.mark.parametrize("cached", [False, True])
def test_a_job_from_the_broker_reads_its_instance_s_state_with_the_lock(
        chain: Harness, monkeypatch: pytest.MonkeyPatch, cached: bool) -> None:
    """Another process (the web) advanced the instance last, so the worker reads the state in
    the statement that locks the instance, not in one more after it; a workflow that is cached
    after all is used as it is (its version decides), and the outcome is the same either way."""
    h = chain
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: h.engine)
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published
    if not cached:
        h.engine._live.clear()  # as in a worker process: the web's advance is not cached there
    hits, misses = h.engine.live_hits, h.engine.live_misses
    with statements() as seen:
        assert worker_app.run_job(first.job_id) == "done"
    assert not [s for s in seen if s.startswith("SELECT instances.state FROM instances")]
    assert (h.engine.live_hits - hits, h.engine.live_misses - misses) == ((2, 0) if cached else (1, 1))
    assert _jobs() == [("a", "done"), ("c", "done")]
    assert _effects() == ["a-K1", "b-K1", "d-K1"]
    assert [t.element_id for t in h.engine.inbox(h.staff)] == ["review"]
