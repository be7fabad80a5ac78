"""A message that arrives before anyone waits for it is not lost (Zeebe's message buffering):
published with a time-to-live it is kept, and correlated exactly once when the instance's
subscription opens; past its time-to-live it expires and is never delivered."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from certflow.bootstrap import build_engine
from certflow.engine.errors import NotFound
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Message
from tests.engine.test_runtime import office_task, start
from tests.support import FLOW_DIR, Harness

TTL = timedelta(days=60)


@pytest.fixture
def flow(any_db: str) -> Harness:
    """On SQLite and PostgreSQL: the look-up after an advance reads outside a transaction
    there (``Runtime.reading``)."""
    harness = Harness(build_engine())
    harness.engine.publisher = harness.published.extend
    harness.engine.deploy(harness.staff, FLOW_DIR)
    return harness


def _ref(h: Harness, instance_id: str) -> object:
    return h.engine.instance(h.staff, instance_id).data["ref"]


def _received(instance_id: str) -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == instance_id, AuditEvent.action == "message_received")) or 0)


def _statuses() -> list[str]:
    with session_scope() as s:
        return list(s.scalars(select(Message.status).order_by(Message.id)))


def _ready_for_review(h: Harness) -> tuple[str, object]:
    instance_id = start(h)
    h.run_jobs()
    return instance_id, _ref(h, instance_id)


def test_a_message_before_the_wait_is_correlated_when_the_wait_begins(flow: Harness) -> None:
    instance_id, ref = _ready_for_review(flow)
    assert flow.engine.deliver_message(flow.staff, "paid", {"amount": 1}, {"ref": ref}, ttl=TTL) == []
    assert _statuses() == ["buffered"]
    flow.engine.complete(flow.staff, office_task(flow), {"approved": True})  # reaches wait_paid
    view = flow.engine.instance(flow.staff, instance_id)
    assert view.status == "completed" and view.data["amount"] == 1
    assert _statuses() == ["delivered"] and _received(instance_id) == 1


def test_a_message_after_the_wait_began_is_delivered_at_once(flow: Harness) -> None:
    instance_id, ref = _ready_for_review(flow)
    flow.engine.complete(flow.staff, office_task(flow), {"approved": True})
    assert flow.engine.deliver_message(flow.staff, "paid", {"amount": 2}, {"ref": ref}, ttl=TTL) == [instance_id]
    assert flow.engine.instance(flow.staff, instance_id).status == "completed"
    assert _statuses() == [] and _received(instance_id) == 1  # never buffered


def test_a_second_early_message_is_not_delivered_twice(flow: Harness) -> None:
    instance_id, ref = _ready_for_review(flow)
    for amount in (1, 2):
        flow.engine.deliver_message(flow.staff, "paid", {"amount": amount}, {"ref": ref}, ttl=TTL)
    flow.engine.complete(flow.staff, office_task(flow), {"approved": True})
    assert flow.engine.instance(flow.staff, instance_id).data["amount"] == 1  # the first, once
    assert _statuses() == ["delivered", "buffered"] and _received(instance_id) == 1
    assert flow.engine.correlate_buffered() == 0  # beat's pass finds nobody waiting for it


def test_an_early_message_expires_after_its_time_to_live(flow: Harness) -> None:
    instance_id, ref = _ready_for_review(flow)
    flow.engine.deliver_message(flow.staff, "paid", {"amount": 1}, {"ref": ref}, ttl=timedelta(days=2))
    flow.advance("P3D")
    assert flow.engine.expire_buffered() == 1
    flow.engine.complete(flow.staff, office_task(flow), {"approved": True})
    assert flow.engine.instance(flow.staff, instance_id).status == "running"  # still waits
    assert _statuses() == ["expired"] and _received(instance_id) == 0


def test_without_a_time_to_live_nobody_waiting_is_still_an_error(flow: Harness) -> None:
    _, ref = _ready_for_review(flow)
    with pytest.raises(NotFound, match="no instance is waiting"):
        flow.engine.deliver_message(flow.staff, "paid", {"amount": 1}, {"ref": ref})
    assert _statuses() == []
