"""A long-running engine (a worker, beat, the web) sees the shared clock another process moved
(`certflow clock advance`, the demo's clock) in every unit of work: the job sweep and the
monitor's case page read "now" after their session refreshed the offset, not before."""

from __future__ import annotations

from datetime import timedelta

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
