"""Due timers fire in batches: many instances per transaction, each in its own savepoint, so
one that fails gets an incident and stops re-firing while the rest of its batch fires."""

from __future__ import annotations


import pytest
from sqlalchemy import func, select

from certflow.clock import CLOCK, parse_duration
from certflow.observability.logs import configure_logging
from certflow.store.db import session_scope
from certflow.store.models import Incident, Instance, Job
from tests.support import FLOW_DIR, Harness, save_fails_for


@pytest.fixture
def waiting(harness: Harness) -> Harness:
    harness.engine.deploy(harness.staff, FLOW_DIR)
    for i in range(7):
        harness.engine.start(harness.staff, "flow", f"T{i}", {"key": f"T{i}"})
    harness.run_jobs()
    with session_scope() as s:
        CLOCK.advance(s, parse_duration("P8D"), allowed=True)  # every review reminder is due
    return harness


def _reminders() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Job).where(Job.element_id == "remind")) or 0)


def test_batches_fire_every_due_timer_once(waiting: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting.engine.settings, "timer_batch", 3)
    assert waiting.engine.fire_due_timers(limit=None) == 7  # batches of 3, 3 and 1
    assert waiting.engine.fire_due_timers(limit=None) == 0
    assert _reminders() == 7
    assert waiting.published and all(m.operator == "test/echo" for m in waiting.published)


def test_a_failing_timer_gets_an_incident_and_its_batch_still_fires(
        waiting: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = waiting.engine
    save_fails_for(engine, "T3", monkeypatch)
    assert engine.fire_due_timers(limit=None) == 7
    assert engine.fire_due_timers(limit=None) == 0  # T3 does not fire again and again
    assert _reminders() == 6
    with session_scope() as s:
        [incident] = s.scalars(select(Incident)).all()
        broken = s.get(Instance, incident.instance_id)
        assert broken is not None and broken.business_key == "T3" and broken.has_incident
        assert broken.next_due_at is None and "the diagram broke" in incident.error


def test_engine_runs_log_no_task_data(waiting: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """SpiffWorkflow logged every task state change at INFO with the task's data in the extras
    (in a worker's JSON logs: nine lines per fired timer, personal data included, half the time
    per timer). Firing and advancing at INFO now leaves none of it in the logs."""
    configure_logging("worker", level="INFO")  # as a worker starts (an earlier test may have traced)
    caplog.set_level("INFO")
    assert waiting.engine.fire_due_timers(limit=None) == 7
    waiting.run_jobs()
    spiff = [r for r in caplog.records if r.name.startswith("spiff")]
    assert spiff == []
    assert not any(hasattr(r, "data") or hasattr(r, "internal_data") for r in caplog.records)
