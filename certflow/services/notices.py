"""Escalation notices by email: the reminder to whoever holds a task, and the notice to each
member of the group a task is escalated to (the coordinators, the office manager).

Not a service task: the engine hands the sweep's steps to ``send_escalation_notices`` after
they are committed (wired in certflow/bootstrap.py), so a mail never goes out for a step that
was rolled back. Each mail is keyed ``escalation:<task>:<level>:<username>`` (see
``certflow.services.email``), so a step is mailed once per person. Someone without a usable
address is skipped and logged: the step stands either way (audit, escalation inbox).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from certflow.localtime import local_date
from certflow.registry import HandlerContext, HandlerError
from certflow.services.email import SendEmail, send_email
from certflow.settings import Settings
from certflow.store.db import transaction
from certflow.store.models import User

log = logging.getLogger(__name__)
REMINDER = "escalation_reminder"


def staff_by_group(session: Session) -> dict[str, list[str]]:
    """Each staff group's members. Escalation groups are staff groups, a short list: read once
    per batch and grouped here, since JSON membership queries differ per database (one query
    per step was 94 of 116 s for 3,000 steps on a loaded PostgreSQL)."""
    members: dict[str, list[str]] = {}
    for user in session.scalars(select(User).where(User.is_staff.is_(True)).order_by(User.username)):
        for group in user.groups or []:
            members.setdefault(group, []).append(user.username)
    return members


def recipients(step: dict[str, Any], staff: dict[str, list[str]]) -> list[str]:
    detail = step["detail"]
    if step["action"] == REMINDER:
        return [detail["assignee"]] if detail.get("assignee") else []
    return list(staff.get(detail.get("to") or "", []))


def send_escalation_notices(session: Session, now: datetime, settings: Settings,
                            steps: Iterable[dict[str, Any]]) -> int:
    """Mail the people of every step (audit rows as the sweep wrote them); returns how many."""
    sent = 0
    staff = staff_by_group(session)
    for step in steps:
        detail = step["detail"]
        template = "escalation/reminder" if step["action"] == REMINDER else "escalation/escalated"
        context: dict[str, Any] = {
            "title": detail.get("title") or step["element_id"], "business_key": detail.get("business_key", ""),
            "due_date": local_date(datetime.fromisoformat(detail["due_at"])).isoformat()}
        if template == "escalation/escalated" and detail.get("assignee"):
            context["assignee_username"] = detail["assignee"]
        for username in recipients(step, staff):
            key = f"escalation:{step['task_id']}:{detail['level']}:{username}"
            ctx = HandlerContext(session=session, now=now, idempotency_key=key, settings=settings,
                                 instance_id=step["instance_id"])
            try:
                with session.begin_nested():
                    send_email(ctx, SendEmail(recipient=username, template=template, context=context))
                sent += 1
            except HandlerError as exc:
                log.warning("escalation notice %s not sent: %s", key, exc)
    return sent


def notifier(sessions: sessionmaker[Session], settings: Settings,
             now: Callable[[], datetime]) -> Callable[[list[dict[str, Any]]], None]:
    """What the engine calls with each committed batch of escalation steps."""
    def notify(steps: list[dict[str, Any]]) -> None:
        with transaction(sessions) as session:
            send_escalation_notices(session, now(), settings, steps)
    return notify
