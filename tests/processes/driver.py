"""Drive a whole process the way people and workers would: users complete tasks from their
own inbox, jobs run (in-process on SQLite, or on a real Celery worker on PostgreSQL + Redis),
and the clock moves instead of sleeping."""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from certflow import workdays
from certflow.clock import CLOCK, parse_duration
from certflow.engine.dto import TaskView
from certflow.engine.facade import Actor
from certflow.settings import get_settings
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import Instance, Job, Message
from tests.integration.topology import Topology, wait_for
from tests.support import ROOT, Harness

PROCESSES = ROOT / "processes"


def calendar() -> workdays.Calendar:
    """The working-day calendar the diagrams' terms follow (processes/shared/closing_days.json)."""
    return workdays.calendar(get_settings().processes_dir)


def candidate_term_end(start: datetime, term: str) -> datetime:
    """When a candidate's term (``deadline(term, True)`` in a diagram) that started at ``start``
    ends: so many days later, or the end of the next working day when that is a day off. Tests
    compute it here rather than counting days, so they pass whatever day they run on."""
    return calendar().deadline(start, workdays.parse_term(term), True)


def expired_days_ago(today: date) -> int:
    """``days_left`` (negative) of the most recent expiry whose sign-up term is over by
    ``today``: an expiry on a day off counts through the next working day (the lifecycle's
    lapse and the sign-up guard), so "yesterday" is not always past it."""
    days = 1
    while calendar().next_working_day(today - timedelta(days=days)) >= today:
        days += 1
    return -days


class Driver:
    def __init__(self, harness: Harness, topology: Topology | None = None) -> None:
        self.h = harness
        self.engine = harness.engine
        self.topology = topology
        self.people: dict[str, Actor] = {}

    def person(self, username: str, groups: list[str], staff: bool = False, **extra: Any) -> Actor:
        self.people[username] = self.h.user(username, groups, staff, **extra)
        return self.people[username]

    def settle(self) -> None:
        """Let every due job finish."""
        if self.topology is None:
            self.h.run_jobs()
            return
        wait_for(lambda: not self._pending(), timeout=60, what="jobs to finish", topology=self.topology)

    def _pending(self) -> bool:
        # A message still pending may be mid-delivery in a worker's tick (this process's own
        # drain then skips it): its advance writes the jobs it causes in the same commit that
        # marks it delivered, so both are checked in one snapshot: one statement. (Two
        # statements in one transaction are two snapshots on PostgreSQL, READ COMMITTED: the
        # first could miss the jobs and the second the pending message, with that commit
        # between them; a test then looked for an e-mail whose job was still to run.)
        jobs = select(Job.id).where(Job.status.in_(("queued", "running")), Job.available_at <= self.engine.now())
        messages = select(Message.id).where(Message.status == "pending")
        with session_scope() as s:
            return bool(s.scalar(select(or_(jobs.exists(), messages.exists()))))

    def later(self, duration: str) -> None:
        """Move time on; return when every timer that became due has fired and every job it
        caused has finished (beat may be firing some of them at the same moment)."""
        with session_scope() as s:
            CLOCK.advance(s, parse_duration(duration), allowed=True)
        for _ in range(50):
            self.engine.fire_due_timers()
            self.settle()
            if not self._timers_due():
                return
            time.sleep(0.1)
        raise AssertionError("timers stayed due")

    def until(self, moment: datetime) -> None:
        """Move time on to ``moment`` (as ``later``)."""
        seconds = math.ceil((moment - self.engine.now()).total_seconds())
        assert seconds > 0, f"the clock is already past {moment}"
        self.later(f"PT{seconds}S")

    def _timers_due(self) -> bool:
        with session_scope() as s:
            return bool(s.scalar(select(Instance.id).where(
                Instance.status == "running", Instance.next_due_at <= self.engine.now()).limit(1)))

    def inbox(self, username: str) -> list[TaskView]:
        return self.engine.inbox(self.people[username])

    def do(self, username: str, element_id: str, data: dict[str, Any]) -> None:
        """The user finds the task in their inbox, claims it if needed, and completes it."""
        actor = self.people[username]
        matches = [t for t in self.engine.inbox(actor) if t.element_id == element_id]
        assert matches, f"{username} has no {element_id} task; inbox: {[t.element_id for t in self.engine.inbox(actor)]}"
        task = matches[0]
        if task.assignee is None:
            self.engine.claim(actor, task.id)
        self.engine.complete(actor, task.id, data)
        self.settle()

    def emails(self, recipient: str | None = None) -> list[str]:
        with session_scope() as s:
            query = select(EmailMessage).order_by(EmailMessage.created_at)
            if recipient:
                query = query.where(EmailMessage.recipient == recipient)
            return [m.template for m in s.scalars(query)]
