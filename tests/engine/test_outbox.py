"""Outbox service tasks (certflow.engine.outbox): a handler declared ``effects="outbox"`` (an
e-mail) does not hold its process up. The advance that reaches its task queues the job and
moves on; a worker then sends, keyed by the job, without advancing the instance again. The
chain diagram is start -> a, b (database) -> c -> d (database) -> review; here c is
``test/notify``, an outbox handler that sends one "email" per idempotency key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from certflow.engine.errors import Conflict, DeployError
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Instance, Job
from tests.support import CHAIN_DIR, Harness, db_effects, job_states

NOTIFY = 'id="test/notify" resultVariable="rc"'


def chain(tmp_path: Path, c_operator: str = NOTIFY, boundary: bool = False, wait: str | None = None) -> Path:
    target = tmp_path / "procs"
    shutil.copytree(CHAIN_DIR, target)
    bpmn = target / "chain" / "chain.bpmn"
    text = bpmn.read_text().replace('id="test/echo" resultVariable="rc"', c_operator)
    if wait is not None:  # c's property wait: the process waits for c's handler after all
        text = text.replace(f'<spiffworkflow:serviceTaskOperator {c_operator}>',
                            '<spiffworkflow:properties><spiffworkflow:property name="wait" '
                            f'value="{wait}"/></spiffworkflow:properties>'
                            f'<spiffworkflow:serviceTaskOperator {c_operator}>')
    if boundary:  # a timer on c: the process must wait for c's handler, so the timer can interrupt it
        text = text.replace('<bpmn:userTask id="review"', '''<bpmn:boundaryEvent id="c_late" attachedToRef="c">
      <bpmn:outgoing>f7</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"P1D"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="late_end"><bpmn:incoming>f7</bpmn:incoming></bpmn:endEvent>
    <bpmn:userTask id="review"''').replace('<bpmn:flowNodeRef>end</bpmn:flowNodeRef>',
                                           '<bpmn:flowNodeRef>end</bpmn:flowNodeRef><bpmn:flowNodeRef>c_late'
                                           '</bpmn:flowNodeRef><bpmn:flowNodeRef>late_end</bpmn:flowNodeRef>'
                                           ).replace('<bpmn:sequenceFlow id="f6"', '<bpmn:sequenceFlow id="f7" '
                                                     'sourceRef="c_late" targetRef="late_end"/>\n'
                                                     '    <bpmn:sequenceFlow id="f6"')
    bpmn.write_text(text)
    return target


@pytest.fixture
def notifying(harness: Harness, tmp_path: Path) -> Harness:
    harness.engine.deploy(harness.staff, chain(tmp_path))
    return harness


def emails() -> list[str]:
    with session_scope() as s:
        return list(s.scalars(select(EmailMessage.subject).order_by(EmailMessage.created_at)))


def version_of(instance_id: str) -> int:
    with session_scope() as s:
        return s.get_one(Instance, instance_id).version


def actions(instance_id: str) -> list[str]:
    with session_scope() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.instance_id == instance_id)
                              .order_by(AuditEvent.id)))


def to_review(h: Harness) -> tuple[str, int]:
    """Start, run a's job: a, b run inline, c's mail is queued, d runs inline, review opens.
    Returns the instance and c's job."""
    instance_id = h.engine.start(h.staff, "chain", "K1", {"key": "K1"}).id
    assert h.engine.run_job(h.published[0].job_id) == "done"
    [message] = [m for m in h.published if m.detached]
    return instance_id, message.job_id


def test_the_process_moves_on_as_the_mail_is_queued_and_the_worker_sends_it_once(notifying: Harness) -> None:
    h = notifying
    instance_id, c_job = to_review(h)
    # One advance ran a, b, queued c's mail and ran d: the reviewer has the task before the mail is sent.
    assert db_effects() == ["a-K1", "b-K1", "d-K1"] and emails() == []
    assert [t.element_id for t in h.engine.inbox(h.staff)] == ["review"]
    assert job_states() == [("a", "done"), ("c", "queued")]
    data = h.engine.instance(h.staff, instance_id).data
    assert data["rc"] == {"status": "queued", "job_id": c_job}
    version = version_of(instance_id)

    assert h.engine.run_job(c_job, detached=True) == "done"
    assert emails() == ["About c-K1"] and job_states()[-1] == ("c", "done")
    assert version_of(instance_id) == version  # the send advanced nothing
    assert h.engine.run_job(c_job, detached=True) == "ignored:done"  # a redelivery sends nothing
    assert h.engine.run_job(c_job) == "ignored:done"  # nor one without the message's flag
    assert emails() == ["About c-K1"]
    assert actions(instance_id).count("service_queued") == 1
    assert actions(instance_id)[-1] == "service_completed"


def test_a_web_advance_queues_the_mail_without_running_any_handler(harness: Harness, tmp_path: Path) -> None:
    """The web never runs handlers: its advance only writes the job, as for any job."""
    harness.engine.deploy(harness.staff, _first_is_notify(chain(tmp_path)))
    instance_id = harness.engine.start(harness.staff, "chain", "K2", {"key": "K2"}).id
    assert emails() == [] and db_effects() == []
    assert [(m.operator, m.detached) for m in harness.published] == [("test/notify", True), ("test/db_effect", False)]
    assert harness.run_jobs() == ["done", "done", "done"]  # a's mail; b (c waits: an ordinary job); c
    assert emails() == ["About a-K2"]
    assert db_effects() == ["b-K2", "d-K2"]
    assert [t.element_id for t in harness.engine.inbox(harness.staff)] == ["review"]
    assert harness.engine.instance(harness.staff, instance_id).data["ra"]["status"] == "queued"


def _first_is_notify(procs: Path) -> Path:
    """The chain with a as the outbox task (right after the start), c as an ordinary one."""
    bpmn = procs / "chain" / "chain.bpmn"
    text = bpmn.read_text().replace(NOTIFY, 'id="test/echo" resultVariable="rc"')
    bpmn.write_text(text.replace('id="test/db_effect" resultVariable="ra"', 'id="test/notify" resultVariable="ra"'))
    return procs


def test_a_mail_server_down_is_retried_then_an_incident_staff_retry_or_skip(
        notifying: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = notifying
    h.engine.settings = h.engine.settings.model_copy(update={"job_backoff_seconds": 60, "job_max_attempts": 2})
    instance_id, c_job = to_review(h)
    monkeypatch.setenv("CERTFLOW_TEST_NOTIFY_FAILS", "retry")
    assert h.engine.run_job(c_job, detached=True) == "retry"
    assert h.run_jobs() == []  # the next attempt waits out its backoff
    h.advance("PT2M")
    assert h.engine.sweep_jobs() == 1  # published by the sweep once due
    assert h.run_jobs() == ["incident"]
    assert job_states()[-2:] == [("c", "failed"), ("c", "failed")]
    # The process did not wait: review is open, and the instance shows the incident.
    view = h.engine.instance(h.staff, instance_id)
    assert view.has_incident and [t.element_id for t in view.open_tasks] == ["review"]
    [incident] = h.engine.incidents(h.staff)
    assert (incident.element_id, incident.attempts, incident.error) == ("c", 2, "the mail server is down")

    monkeypatch.delenv("CERTFLOW_TEST_NOTIFY_FAILS")
    version = version_of(instance_id)
    h.published.clear()
    assert h.engine.resolve_incident(h.staff, incident.id, "retry") == "retried"
    assert [m.detached for m in h.published] == [True]  # the fresh attempt, published at once
    with pytest.raises(Conflict):
        h.engine.resolve_incident(h.staff, incident.id, "skip")
    assert not h.engine.instance(h.staff, instance_id).has_incident
    assert h.run_jobs() == ["done"]
    assert emails() == ["About c-K1"] and version_of(instance_id) == version
    with session_scope() as s:
        assert s.scalars(select(Job.attempt).where(Job.element_id == "c").order_by(Job.id)).all() == [1, 2, 3]


def test_a_permanent_failure_opens_an_incident_at_once_and_skip_leaves_the_mail_unsent(
        notifying: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = notifying
    instance_id, c_job = to_review(h)
    monkeypatch.setenv("CERTFLOW_TEST_NOTIFY_FAILS", "permanent")
    assert h.engine.run_job(c_job, detached=True) == "incident"
    [incident] = h.engine.incidents(h.staff)
    assert incident.error == "no such address"
    assert h.engine.resolve_incident(h.staff, incident.id, "skip") == "skipped"
    assert h.engine.incidents(h.staff) == [] and h.run_jobs() == [] and emails() == []
    view = h.engine.instance(h.staff, instance_id)
    assert not view.has_incident and [t.element_id for t in view.open_tasks] == ["review"]
    assert "incident_skipped" in actions(instance_id)


def test_an_outbox_task_with_a_boundary_event_keeps_the_process_waiting(harness: Harness, tmp_path: Path) -> None:
    """A timer attached to the task must still be able to interrupt it: so that task waits for
    its handler, as any service task does."""
    harness.engine.deploy(harness.staff, chain(tmp_path, boundary=True))
    harness.engine.start(harness.staff, "chain", "K3", {"key": "K3"})
    assert harness.run_jobs() == ["done", "done"]  # a's job, then c's: an ordinary job
    assert not any(m.detached for m in harness.published)
    assert emails() == ["About c-K3"]
    assert [t.element_id for t in harness.engine.inbox(harness.staff)] == ["review"]


def test_an_outbox_task_marked_wait_holds_the_process_until_the_mail_is_sent(harness: Harness, tmp_path: Path) -> None:
    """A later step needs the mail gone first (data_erasure erases the address next): with
    ``wait`` = ``true`` the task waits for its handler's result; d runs only after the mail."""
    harness.engine.deploy(harness.staff, chain(tmp_path, wait="true"))
    harness.engine.start(harness.staff, "chain", "K4", {"key": "K4"})
    assert harness.engine.run_job(harness.published[0].job_id) == "done"  # a, b; c waits for its job
    assert not any(m.detached for m in harness.published) and emails() == []
    assert db_effects() == ["a-K4", "b-K4"]
    assert harness.engine.inbox(harness.staff) == []
    assert harness.run_jobs() == ["done"]  # c's mail, then d and review in the same advance
    assert emails() == ["About c-K4"]
    assert db_effects() == ["a-K4", "b-K4", "d-K4"]
    assert [t.element_id for t in harness.engine.inbox(harness.staff)] == ["review"]


def test_wait_is_true_or_false_or_the_deploy_is_refused(harness: Harness, tmp_path: Path) -> None:
    with pytest.raises(DeployError) as refused:
        harness.engine.deploy(harness.staff, chain(tmp_path, wait="yes"))
    assert "[c]: property 'wait' must be true or false" in refused.value.message


def test_a_task_waiting_for_its_job_on_an_older_version_finishes_by_that_job_after_a_move(
        harness: Harness, tmp_path: Path) -> None:
    """c sends with an ordinary job on version 1; version 2 makes it an outbox task. An instance
    moved to version 2 while c's job is queued does not queue c a second time: that job's result
    completes it, as it would have on version 1."""
    h = harness
    h.engine.deploy(h.staff, chain(tmp_path / "v1", 'id="test/slow_effect" resultVariable="rc"'))
    instance_id = h.engine.start(h.staff, "chain", "K4", {"key": "K4"}).id
    assert h.engine.run_job(h.published[0].job_id) == "done"
    assert job_states() == [("a", "done"), ("c", "queued")]
    v2 = chain(tmp_path / "v2")
    (v2 / "chain" / "chain.bpmn").write_text((v2 / "chain" / "chain.bpmn").read_text().replace(
        'name="Chained service tasks"', 'name="Chained service tasks, mail queued"'))
    h.engine.deploy(h.staff, v2)
    owner = h.user("paula", ["process_owner"], staff=True)
    assert h.engine.migrate_instance(owner, instance_id).newest_version == 2
    assert job_states() == [("a", "done"), ("c", "queued")]  # no second job for c
    assert h.run_jobs() == ["done"]
    assert emails() == ["About c-K4"]
    assert [t.element_id for t in h.engine.inbox(h.staff)] == ["review"]
