"""A long-running engine (a worker, beat, the web) sees the shared clock another process moved
(`certflow clock advance`, the demo's clock) in every unit of work: the job sweep and the
monitor's case page read "now" after their session refreshed the offset, not before."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from certflow.clock import CLOCK
from certflow.store.db import session_scope
from certflow.store.models import ClockOffset
from tests.engine.test_monitor import OFFICE, at_review, flow  # noqa: F401  (the fixture)
from tests.engine.test_runtime import start
from tests.support import Harness


def moved_by_another_process(by: timedelta) -> None:
    """What another process's `certflow clock advance` leaves behind: the shared offset row
    moved, and this process has not read it yet."""
    before = CLOCK.offset
    with session_scope() as s:
        row = s.get(ClockOffset, 1)
        if row is None:
            s.add(ClockOffset(id=1, offset_seconds=by.total_seconds()))
        else:
            row.offset_seconds += by.total_seconds()
    assert CLOCK.offset == before


def test_the_job_sweep_sees_the_clock_another_process_moved(flow: Harness) -> None:  # noqa: F811
    flow.engine.publisher = None  # the broker was unreachable at commit time
    start(flow)
    flow.published.clear()
    flow.engine.publisher = flow.published.extend
    assert flow.engine.sweep_jobs() == 0  # too recent: it may still be in flight
    moved_by_another_process(timedelta(minutes=1))
    assert flow.engine.sweep_jobs() == 1  # a minute later by the shared clock: republished
    assert len(flow.published) == 1


def test_the_case_page_sees_the_clock_another_process_moved(flow: Harness) -> None:  # noqa: F811
    instance_id = at_review(flow)
    assert not flow.engine.monitor_detail(OFFICE, instance_id).instance.overdue
    moved_by_another_process(timedelta(days=11))  # the review was due in 10 days
    detail = flow.engine.monitor_detail(OFFICE, instance_id)
    assert detail.instance.overdue
    [opened] = [e for e in detail.timeline if e.action == "ready" and e.element_id == "review"]
    assert opened.late



def test_an_advance_sees_the_clock_another_process_moved(flow: Harness) -> None:  # noqa: F811
    """An advance reads the offset with its instance lock (no read of its own): a job's run and
    a user's completion are stamped by the clock as moved just before them, not a stale one."""
    instance_id = start(flow)
    moved_by_another_process(timedelta(days=2))
    flow.run_jobs()  # the make_ref job, run as a worker runs it
    moved_by_another_process(timedelta(days=3))
    [task] = [t for t in flow.engine.inbox(flow.staff) if t.element_id == "review"]
    moved_by_another_process(timedelta(days=4))  # after the inbox read: only the advance sees it
    flow.engine.complete(flow.staff, task.id, {"approved": True})
    real = datetime.now(timezone.utc)
    events = {e["action"]: _aware(e["at"]) for e in flow.engine.history(flow.staff, instance_id)}
    assert real + timedelta(days=2, minutes=-1) < events["service_completed"] < real + timedelta(days=3)
    assert events["task_completed_by_user"] > real + timedelta(days=9, minutes=-1)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
