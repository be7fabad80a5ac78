"""Messages between processes, timer-start schedules and handler fan-out."""

from __future__ import annotations

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
    assert len(commits) == 2  # the pick that starts R-k9, then the look that finds none left
    assert _instances("receiver") == [("R-k9", "running")]
    with session_scope() as s:
        assert s.scalars(select(Message.status)).all() == ["started"]
