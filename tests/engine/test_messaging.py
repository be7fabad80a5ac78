"""Messages between processes, timer-start schedules and handler fan-out."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select

from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Instance, Message
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


# The receivers' "instance_started" audit rows (the ticker's schedule has one too).
_STARTED_AUDIT = (select(AuditEvent.instance_id).join(Instance, Instance.id == AuditEvent.instance_id)
                  .where(AuditEvent.action == "instance_started", Instance.process_id == "receiver"))


def _hellos(harness: Harness, keys: list[str]) -> None:
    from certflow.engine.messaging import emit

    with session_scope() as s:
        for key in keys:
            emit(s, "hello", {"business_key": f"R-{key}", "key": key}, harness.engine.now())


def _counting_commits() -> tuple[list[int], Any]:
    from sqlalchemy import event

    from certflow.store.db import get_engine

    commits: list[int] = []

    def count(*_: object) -> None:
        commits.append(1)

    event.listen(get_engine(), "commit", count)
    return commits, lambda: event.remove(get_engine(), "commit", count)


def test_messages_that_start_instances_are_started_together_in_one_transaction(harness: Harness) -> None:
    """A drained backlog of start messages: up to ``start_batch`` picked and started in one
    transaction (one commit here), each instance as if started alone: its row, its queue
    entry, its audit, its message marked with it; and it advances normally afterwards."""
    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    _hellos(harness, ["alone"])
    assert harness.engine.drain_messages() == 1  # started on its own: the row to compare with
    keys = [f"k{i}" for i in range(7)]
    _hellos(harness, keys)
    commits, stop = _counting_commits()
    try:
        assert harness.engine.drain_messages() == 7
    finally:
        stop()
    assert len(commits) == 1
    assert _instances("receiver") == [("R-alone", "running")] + [(f"R-{k}", "running") for k in keys]
    with session_scope() as s:
        rows = {i.business_key: i for i in s.scalars(select(Instance).where(Instance.process_id == "receiver"))}
        alone = rows.pop("R-alone")
        ids = {key: i.id for key, i in rows.items()}
        messages = s.execute(select(Message.status, Message.outcome).where(Message.id > 1)
                             .order_by(Message.id)).tuples().all()
        started = s.scalars(_STARTED_AUDIT).all()
        versions = set(s.scalars(select(Instance.version).where(Instance.process_id == "receiver")))
    assert messages == [("started", f"started {ids[f'R-{k}']}") for k in keys]
    assert sorted(started) == sorted([*ids.values(), alone.id])  # audited once each
    assert versions == {2}  # inserted, then its saved state: as a start of its own writes it
    same = ("definition_id", "status", "serializer_version", "version", "next_due_at", "has_incident",
            "started_by", "subject", "ended_at")
    for row in rows.values():
        assert {c: getattr(row, c) for c in same} == {c: getattr(alone, c) for c in same}
        assert row.projected == {**alone.projected, "human": row.projected["human"]}
        assert len(row.state["tasks"]) == len(alone.state["tasks"])
    tasks = harness.engine.inbox(harness.staff)
    assert sorted(t.context["key"] for t in tasks) == ["alone", *keys]
    batched = [t for t in tasks if t.context["key"] != "alone"]
    harness.engine.complete(harness.staff, batched[0].id, {"ok": True})  # from the live cache
    harness.engine.complete(harness.staff, batched[1].id, {"ok": True})
    assert [status for _, status in _instances("receiver")].count("completed") == 2


def test_a_start_that_fails_in_a_batch_fails_alone_and_the_others_start_once(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """One broken start rolls its batch back; the batch is then started one by one, so that
    message alone is settled as failed, with the reason, and every other starts exactly once."""
    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    create = harness.engine.create_instance
    calls: list[str] = []

    def broken(session: Any, definition: Any, username: str, business_key: str, *args: Any, **kw: Any) -> Any:
        calls.append(business_key)
        if business_key == "R-k2":
            raise RuntimeError("the diagram broke")
        return create(session, definition, username, business_key, *args, **kw)

    monkeypatch.setattr(harness.engine, "create_instance", broken)
    keys = [f"k{i}" for i in range(5)]
    _hellos(harness, keys)
    assert harness.engine.drain_messages() == 5
    assert _instances("receiver") == [(f"R-{k}", "running") for k in keys if k != "k2"]
    with session_scope() as s:
        statuses = s.execute(select(Message.status, Message.outcome).order_by(Message.id)).tuples().all()
        audited = s.scalars(_STARTED_AUDIT).all()
    assert [status for status, _ in statuses] == ["started", "started", "failed", "started", "started"]
    assert "the diagram broke" in (statuses[2][1] or "")
    assert len(audited) == len(set(audited)) == 4
    assert calls[:3] == ["R-k0", "R-k1", "R-k2"]  # the batch, up to the failure; then one by one
    assert calls[3:] == ["R-k0", "R-k1", "R-k2", "R-k3", "R-k4"]


def _statuses_seen_by_a_reader() -> set[str]:
    """The messages' statuses as another process reads them while a batch is open: a plain
    read (a ``session_scope`` would wait for the batch's write lock, and time out)."""
    path = make_url(get_settings().database_url).database
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return {status for (status,) in conn.execute(f"SELECT status FROM {Message.__tablename__}")}


def test_a_start_that_fails_once_in_a_batch_is_started_by_the_retry(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A passing failure (a lost race, say): nothing of the batch is lost, the message of the
    failed start stays pending until the one-by-one retry starts it."""
    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    create = harness.engine.create_instance
    failed: list[str] = []
    seen_meanwhile: list[set[str]] = []

    def flaky(session: Any, definition: Any, username: str, business_key: str, *args: Any, **kw: Any) -> Any:
        if business_key == "R-k3" and not failed:
            failed.append(business_key)
            seen_meanwhile.append(_statuses_seen_by_a_reader())
            raise RuntimeError("serialization failure")
        return create(session, definition, username, business_key, *args, **kw)

    monkeypatch.setattr(harness.engine, "create_instance", flaky)
    keys = [f"k{i}" for i in range(5)]
    _hellos(harness, keys)
    assert harness.engine.drain_messages() == 5
    assert failed == ["R-k3"]
    assert seen_meanwhile == [{"pending"}]  # from outside, the open batch had started nothing
    assert _instances("receiver") == [(f"R-{k}", "running") for k in keys]
    with session_scope() as s:
        assert set(s.scalars(select(Message.status))) == {"started"}
        assert len(s.scalars(_STARTED_AUDIT).all()) == 5


def test_a_batch_stops_before_a_key_that_runs_and_that_message_fails_alone(harness: Harness) -> None:
    harness.engine.deploy(harness.staff, MESSAGING_DIR)
    _hellos(harness, ["k0"])
    harness.engine.drain_messages()
    _hellos(harness, ["k1", "k0", "k2"])
    commits, stop = _counting_commits()
    try:
        assert harness.engine.drain_messages() == 3
    finally:
        stop()
    with session_scope() as s:
        statuses = s.execute(select(Message.status, Message.outcome).order_by(Message.id)).tuples().all()
    assert [status for status, _ in statuses] == ["started", "started", "failed", "started"]
    assert "already running" in (statuses[2][1] or "")
    assert _instances("receiver") == [("R-k0", "running"), ("R-k1", "running"), ("R-k2", "running")]


WAITER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:message id="go" name="go"/>
  <bpmn:process id="waiter" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l1" name="office"><bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>prepare</bpmn:flowNodeRef><bpmn:flowNodeRef>wait</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="prepare" name="Prepare">
      <bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="form" value="ok.json"/></spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:receiveTask id="wait" name="Wait" messageRef="go"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:receiveTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="prepare"/>
    <bpmn:sequenceFlow id="f2" sourceRef="prepare" targetRef="wait"/>
    <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_an_instance_that_waited_for_no_message_opens_its_first_subscription_without_a_delete(
        harness: Harness, tmp_path: Path) -> None:
    """Subscriptions are written only by the projections: when the last save projected none,
    there is none to delete (the e-mail advance of every fee instance opens its payment wait)."""
    from sqlalchemy import event

    from certflow.store.db import get_engine
    from certflow.store.models import Subscription

    (tmp_path / "waiter").mkdir()
    (tmp_path / "waiter" / "waiter.bpmn").write_text(WAITER)
    (tmp_path / "waiter" / "forms").mkdir()
    (tmp_path / "waiter" / "forms" / "ok.json").write_text((MESSAGING_DIR / "receiver" / "forms" / "ok.json").read_text())
    harness.engine.deploy(harness.staff, tmp_path)
    view = harness.engine.start(harness.staff, "waiter", "W1", {})
    [task] = harness.engine.inbox(harness.staff)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(get_engine(), "before_cursor_execute", seen)
    try:
        harness.engine.complete(harness.staff, task.id, {"ok": True})
        opened = [s for s in statements if "subscriptions" in s and s.lstrip().upper().startswith("DELETE")]
        with session_scope() as s:
            assert s.scalars(select(Subscription.message_name).where(Subscription.instance_id == view.id)).all() == ["go"]
        statements.clear()
        assert harness.engine.deliver_message(harness.staff, "go", business_key="W1") == [view.id]
        closed = [s for s in statements if "subscriptions" in s and s.lstrip().upper().startswith("DELETE")]
    finally:
        event.remove(get_engine(), "before_cursor_execute", seen)
    assert opened == [] and len(closed) == 1  # the wait that ends deletes its row
    assert _instances("waiter") == [("W1", "completed")]
    with session_scope() as s:
        assert s.scalars(select(Subscription.instance_id)).all() == []
