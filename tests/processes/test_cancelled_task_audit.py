"""A task a boundary timer takes away keeps its due time in the audit: the candidate's dossier,
cancelled by the 120-day timer, is audited with its due time beside the time it was withdrawn,
as a completed task is; completing a task is not audited twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from certflow.store.db import session_scope
from certflow.store.models import AuditEvent
from tests.processes.driver import Driver
from tests.processes.test_certification import DOSSIER, cert, later, through_payment  # noqa: F401


def _events(instance_id: str, action: str) -> list[AuditEvent]:
    with session_scope() as s:
        return list(s.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == instance_id, AuditEvent.action == action)).all())


def test_a_dossier_withdrawn_by_its_boundary_timer_keeps_its_due_time(cert: Driver) -> None:  # noqa: F811
    instance_id = through_payment(cert)
    [dossier] = cert.inbox("cas")
    assert dossier.due_at is not None
    later(cert, "P121D")  # the interrupting timer: the dossier goes, the coordinator takes over
    assert cert.inbox("cas") == []
    [event] = [e for e in _events(instance_id, "task_cancelled") if e.task_id == dossier.id]
    assert event.element_id == "write_dossier" and event.actor == "process"
    assert datetime.fromisoformat(event.detail["due_at"]) == dossier.due_at
    assert event.detail["assignee"] == "cas" and event.detail["overdue"] is True
    assert event.detail["created_at"]
    # The completed tasks on the way (eligibility, mentor) were audited once, as completions.
    cancelled = {e.element_id for e in _events(instance_id, "task_cancelled")}
    assert cancelled == {"write_dossier"}
    completed = [e.element_id for e in _events(instance_id, "task_completed_by_user")]
    assert sorted(completed) == ["assign_mentor", "check_eligibility"]
