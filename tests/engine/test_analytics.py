"""Process analytics on a constructed audit trail: known durations give known nearest-rank
percentiles, on-time shares, lead times and group waits, on SQLite and PostgreSQL (the SQL
differs: julianday() against EXTRACT(EPOCH)). The dashboard's queue counts likewise."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from certflow.bootstrap import build_engine
from certflow.clock import CLOCK
from certflow.engine.analytics import LEAD_TIME_BOUNDS
from certflow.engine.errors import Forbidden, InvalidInput, NotFound
from certflow.engine.facade import Actor
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, ClockOffset, Definition, HumanTask, Incident, Instance

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
HOUR = 3600.0
STAFF = Actor("olga", ("office",), True)
ELEMENTS = {
    "check": {"type": "UserTask", "name": "Check eligibility", "lane": "office"},
    "review": {"type": "UserTask", "name": "Review dossier", "lane": "mentor"},
    "decide": {"type": "UserTask", "name": "Decide", "lane": "certifier"},
}


def _definition(session: Any, version: int, elements: dict[str, Any] = ELEMENTS) -> int:
    row = Definition(process_id="cert", version=version, name=f"Certification v{version}",
                     content_hash=f"h{version}", sources={}, spec={}, forms={}, elements=elements,
                     deployed_at=T0 - timedelta(days=30), deployed_by="admin")
    session.add(row)
    session.flush()
    return row.id


def _instance(session: Any, definition_id: int, key: str, created: datetime, ended: datetime | None = None,
              status: str = "running") -> str:
    row = Instance(definition_id=definition_id, process_id="cert", business_key=key, status=status,
                   state={}, serializer_version="1", started_by="cas", created_at=created,
                   updated_at=ended or created, ended_at=ended)
    session.add(row)
    session.flush()
    return row.id


def _done(session: Any, instance_id: str, element: str, created: datetime, hours: float,
          due_in_hours: float | None = None) -> None:
    """A task of ``element`` entered the queue at ``created`` and was done ``hours`` later."""
    due = (created + timedelta(hours=due_in_hours)).isoformat() if due_in_hours is not None else None
    session.add(AuditEvent(instance_id=instance_id, task_id=f"t-{element}-{created.timestamp()}-{hours}",
                           element_id=element, actor="olga", action="task_completed_by_user",
                           detail={"data": {}, "created_at": created.isoformat(), "due_at": due,
                                   "escalation_level": 0},
                           at=created + timedelta(hours=hours)))
    # Noise the figures must ignore: the engine's own transition for the same task.
    session.add(AuditEvent(instance_id=instance_id, task_id="x", element_id=element, actor="olga",
                           action="completed", detail={}, at=created + timedelta(hours=hours)))


@pytest.fixture
def trail(any_db: str) -> dict[str, Any]:
    """v1: ``check`` done 5 times in 1, 2, 3, 4, 100 hours (inserted out of order), due after
    10 hours (so 4 of 5 on time); ``review`` 10 times in 1..10 hours without a due date; two
    cases finished (2 and 40 days), one cancelled; one review still open for 48 hours.
    v2: one ``check`` of 7 hours. Outside the period: a 1000-hour check."""
    with session_scope() as s:
        v1, v2 = _definition(s, 1), _definition(s, 2)
        a = _instance(s, v1, "A", T0, T0 + timedelta(days=2), "completed")
        b = _instance(s, v1, "B", T0, T0 + timedelta(days=40), "completed")
        _instance(s, v1, "C", T0, T0 + timedelta(days=3), "cancelled")
        open_case = _instance(s, v1, "D", T0)
        for hours in (4, 100, 1, 3, 2):
            _done(s, a, "check", T0 + timedelta(days=1), hours, due_in_hours=10)
        for hours in range(10, 0, -1):
            _done(s, b, "review", T0 + timedelta(days=1), hours)
        _done(s, _instance(s, v2, "E", T0), "check", T0, 7, due_in_hours=8)
        _done(s, a, "check", T0 - timedelta(days=200), 1000, due_in_hours=10)
        s.add(HumanTask(id="open-review", instance_id=open_case, process_id="cert", business_key="D",
                        element_id="review", title="Review dossier", candidate_group="mentor",
                        created_at=T0 + timedelta(days=8), due_at=T0 + timedelta(days=9)))
    return {"now": T0 + timedelta(days=10)}


def _at(now: datetime) -> None:
    """The shared clock (kept in the database) set so that it reads ``now``."""
    with session_scope() as s:
        s.merge(ClockOffset(id=1, offset_seconds=(now - datetime.now(timezone.utc)).total_seconds()))
        CLOCK.refresh(s)


def _figures(now: datetime, start: datetime = T0 - timedelta(days=1), end: datetime = T0 + timedelta(days=60)) -> Any:
    _at(now)
    return build_engine().process_analytics(STAFF, "cert", start, end)


def test_nearest_rank_percentiles_and_on_time_share(trail: dict[str, Any]) -> None:
    figures = _figures(trail["now"])
    assert [v.version for v in figures.versions] == [2, 1]
    v2, v1 = figures.versions
    check, review = v1.steps  # in the diagram's order
    assert (check.name, check.group, check.done) == ("Check eligibility", "office", 5)
    # Nearest rank: p50 of 1,2,3,4,100 h is the 3rd (3 h, not the 22 h mean); p90 the 5th
    # (100 h; interpolation would say 61.6 h).
    assert check.p50 == pytest.approx(3 * HOUR, abs=1)
    assert check.p90 == pytest.approx(100 * HOUR, abs=1)
    assert check.longest == pytest.approx(100 * HOUR, abs=1)
    assert (check.with_due, check.on_time, check.on_time_share) == (5, 4, 0.8)
    # 1..10 h: p50 the 5th (5 h), p90 the 9th (9 h); no due dates, so no on-time share.
    assert review.p50 == pytest.approx(5 * HOUR, abs=1)
    assert review.p90 == pytest.approx(9 * HOUR, abs=1)
    assert review.on_time_share is None
    assert [s.element_id for s in v2.steps] == ["check"]
    assert v2.steps[0].p50 == v2.steps[0].p90 == pytest.approx(7 * HOUR, abs=1)
    assert v2.steps[0].on_time_share == 1.0


def test_lead_times_and_where_cases_wait(trail: dict[str, Any]) -> None:
    v1 = _figures(trail["now"]).versions[1]
    assert (v1.finished, v1.cancelled) == (2, 1)
    assert v1.lead_p50 == pytest.approx(2 * 86400, abs=1)
    assert v1.lead_p90 == pytest.approx(40 * 86400, abs=1)
    bars = dict(v1.lead_histogram)
    assert bars[LEAD_TIME_BOUNDS[1]] == 1  # 2 days: the "1 to 7 days" bar
    assert bars[LEAD_TIME_BOUNDS[3]] == 1  # 40 days: the "4 to 13 weeks" bar
    assert sum(bars.values()) == 2
    waits = {w.group: w for w in v1.groups}
    # Most waiting first: the office's 110 hours of checks, then the mentors' 55 hours of
    # done reviews plus the open one's 48 hours.
    assert [w.group for w in v1.groups] == ["office", "mentor"]
    assert waits["mentor"].waited == pytest.approx(55 * HOUR, abs=5)
    assert (waits["mentor"].open, waits["mentor"].open_waiting) == (1, pytest.approx(48 * HOUR, abs=5))
    assert waits["office"].waited == pytest.approx(110 * HOUR, abs=5)
    assert waits["office"].open == 0


def test_the_period_limits_what_is_counted(trail: dict[str, Any]) -> None:
    wide = _figures(trail["now"], start=T0 - timedelta(days=365))
    assert wide.versions[1].steps[0].done == 6
    assert wide.versions[1].steps[0].p90 == pytest.approx(1000 * HOUR, abs=1)
    narrow = _figures(trail["now"], start=T0 + timedelta(days=30))
    assert narrow.versions[1].steps == [] and narrow.versions[1].finished == 1


def test_who_may_ask_and_bad_input(trail: dict[str, Any]) -> None:
    engine = build_engine()
    with pytest.raises(Forbidden):
        engine.process_analytics(Actor("cas", ("candidate",)), "cert", T0, T0 + timedelta(days=1))
    with pytest.raises(Forbidden):
        engine.queue_figures(Actor("mila", ("mentor",)))
    with pytest.raises(InvalidInput):
        engine.process_analytics(STAFF, "cert", T0, T0)
    with pytest.raises(NotFound):
        engine.process_analytics(STAFF, "nope", T0, T0 + timedelta(days=1))
    assert engine.analytics_processes(STAFF) == [("cert", "Certification v2")]


def test_queue_figures(trail: dict[str, Any]) -> None:
    with session_scope() as s:
        instance_id = s.query(Instance.id).filter(Instance.business_key == "D").scalar()
        for n, (group, assignee, due, escalated) in enumerate([
                ("office", None, T0, None), ("office", "olga", T0 + timedelta(days=30), None),
                ("office", None, None, "coordinator"), ("mentor", "mila", T0, "coordinator")]):
            s.add(HumanTask(id=f"q{n}", instance_id=instance_id, process_id="cert", business_key="D",
                            element_id="check", title="Check", candidate_group=group, assignee=assignee,
                            created_at=T0, due_at=due, escalated_to=escalated))
        s.add(Incident(instance_id=instance_id, task_id="x", element_id="send", operator="email/send",
                       error="down", traceback="", attempts=3, status="open", created_at=T0))
    _at(trail["now"])
    figures = build_engine().queue_figures(STAFF)
    groups = {g.group: g for g in figures.groups}
    assert (groups["office"].open, groups["office"].unassigned, groups["office"].overdue) == (3, 2, 1)
    # The open review of the trail (due T0+9d) and q3 (due T0): both overdue at T0+10d.
    assert (groups["mentor"].open, groups["mentor"].overdue) == (2, 2)
    assert (groups["coordinator"].open, groups["coordinator"].escalated) == (0, 2)
    assert (figures.open, figures.overdue, figures.incidents, figures.running) == (5, 3, 1, 2)
