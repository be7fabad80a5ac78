"""Messages between processes, timer-start schedules and handler fan-out."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from certflow.store.db import session_scope
from certflow.store.models import Instance, Message
from tests.support import MESSAGING_DIR, Harness


def _instances(process_id: str) -> list[tuple[str, str]]:
    with session_scope() as s:
        return sorted(s.execute(select(Instance.business_key, Instance.status)
                                .where(Instance.process_id == process_id)).tuples().all())


def test_thrown_message_starts_the_receiving_process(harness: Harness) -> None:
    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    harness.engine.start(harness.staff, "sender", "S1", {"key": "k1"})
    assert _instances("sender") == [("S1", "completed")]
    assert _instances("receiver") == [("R-k1", "running")]
    [task] = harness.engine.inbox(harness.staff)
    assert task.context == {"key": "k1"}  # the `show` property: what the assignee sees
    with session_scope() as s:
        [message] = s.scalars(select(Message)).all()
    assert (message.name, message.status) == ("hello", "started")


def test_a_second_message_for_a_running_key_fails_visibly(harness: Harness) -> None:
    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    harness.engine.start(harness.staff, "sender", "S1", {"key": "k1"})
    harness.engine.start(harness.staff, "sender", "S2", {"key": "k1"})
    with session_scope() as s:
        statuses = [(m.status, m.outcome) for m in s.scalars(select(Message).order_by(Message.id))]
    assert statuses[0][0] == "started"
    assert statuses[1][0] == "failed" and "already running" in statuses[1][1]


def test_timer_start_schedule_fires_yearly_and_fans_out(harness: Harness) -> None:
    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    assert _instances("ticker") == [("schedule", "running")]
    harness.engine.deploy(harness.staff, MESSAGING_DIR)  # unchanged: still one schedule
    assert _instances("ticker") == [("schedule", "running")]
    harness.advance("P40D")  # past 1 January 2027
    harness.run_jobs()
    assert _instances("receiver") == [("Y2027-0", "running"), ("Y2027-1", "running"), ("Y2027-2", "running")]
    assert _instances("ticker") == [("schedule", "running")]  # waits for next year
    harness.run_jobs()  # nothing new on a re-run: the fan-out is keyed
    assert len(_instances("receiver")) == 3
    harness.advance("P365D")
    harness.run_jobs()
    assert len(_instances("receiver")) == 6


def test_unrouted_message_is_kept_with_its_reason(harness: Harness) -> None:
    from certflow.engine.messaging import emit

    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    with session_scope() as s:
        emit(s, "nobody", {"x": 1}, harness.engine.now())
    harness.engine.drain_messages()
    with session_scope() as s:
        message = s.scalars(select(Message).where(Message.name == "nobody")).one()
    assert message.status == "unrouted" and "nobody waits" in (message.outcome or "")


def test_a_message_that_starts_an_instance_is_picked_and_started_in_one_transaction(harness: Harness) -> None:
    from sqlalchemy import event

    from certflow.engine.messaging import emit
    from certflow.store.db import get_engine

    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    with session_scope() as s:
        emit(s, "hello", {"business_key": "R-k9", "key": "k9"}, harness.engine.now())
    commits: list[int] = []

    def count(*_: object) -> None:
        commits.append(1)

    event.listen(get_engine(), "commit", count)
    try:
        assert harness.engine.drain_messages() == 1
    finally:
        event.remove(get_engine(), "commit", count)
    assert len(commits) == 1  # the pick that starts R-k9; it saw no other pending, so no second look
    assert _instances("receiver") == [("R-k9", "running")]
    with session_scope() as s:
        assert s.scalars(select(Message.status)).all() == ["started"]


RELAY = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:message id="ping" name="ping"/>
  <bpmn:message id="hello" name="hello"/>
  <bpmn:process id="relay" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing><bpmn:messageEventDefinition messageRef="ping"/></bpmn:startEvent>
    <bpmn:intermediateThrowEvent id="pass_on" name="Pass on">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="hello">
        <bpmn:extensionElements><spiffworkflow:messagePayload>{'business_key': 'R-' + key, 'key': key}</spiffworkflow:messagePayload></bpmn:extensionElements>
      </bpmn:messageEventDefinition>
    </bpmn:intermediateThrowEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="pass_on"/>
    <bpmn:sequenceFlow id="f2" sourceRef="pass_on" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_one_drain_routes_the_messages_its_deliveries_throw(harness: Harness, tmp_path: Path) -> None:
    """The drain stops looking when its pick saw no other message pending; a message thrown by
    the instance it started (after that pick) is still routed by the same drain, not left for
    beat's tick: a ping starts a relay, whose hello starts a receiver, in one drain."""
    from certflow.engine.messaging import emit

    (tmp_path / "relay").mkdir()
    (tmp_path / "relay" / "relay.bpmn").write_text(RELAY)
    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    harness.engine.deploy(harness.staff, tmp_path)
    with session_scope() as s:
        emit(s, "ping", {"business_key": "P-a", "key": "a"}, harness.engine.now())
    assert harness.engine.drain_messages() == 2
    assert _instances("relay") == [("P-a", "completed")]
    assert _instances("receiver") == [("R-a", "running")]
    with session_scope() as s:
        assert s.scalars(select(Message.status).order_by(Message.id)).all() == ["started", "started"]
