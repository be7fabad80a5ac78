"""Timers fired in bulk on PostgreSQL, by separate processes as worker ticks fire them: every
due instance fires exactly once whoever races for it, a process killed in the middle of a
batch loses nothing, and the rows the batch writes in one statement read back as the ORM's
own path would have written them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from certflow.bootstrap import build_engine
from certflow.clock import CLOCK, parse_duration
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Incident, Instance, Job
from tests.support import FLOW_DIR, ROOT, Harness, save_fails_for

pytestmark = pytest.mark.integration

# A process of its own (own engine, own connections, own workflow cache) that fires every due
# timer and prints how many it fired. It starts firing at the wall time ``start_at``, so two of
# them race; each advance takes ``pause`` seconds longer, so their batches overlap. ``hold``:
# after that many advances the process stops, its batch's transaction still open (a worker
# frozen, or about to be killed).
FIRE = """
import sys, time
from certflow.bootstrap import build_engine
engine = build_engine()
hold, start_at, pause = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
save, seen = engine.save, []
def slow(advance, *args):
    seen.append(advance.instance.id)
    if hold and len(seen) > hold:
        print("holding", flush=True)
        time.sleep(600)
    time.sleep(pause)
    return save(advance, *args)
engine.save = slow
time.sleep(max(0.0, start_at - time.time()))
print("fired", engine.fire_due_timers(limit=None), flush=True)
"""


@pytest.fixture
def due(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """40 instances whose review reminder is due, fired in batches of 3."""
    monkeypatch.setenv("CERTFLOW_TIMER_BATCH", "3")
    h = Harness(build_engine())
    monkeypatch.setattr(h.engine.settings, "timer_batch", 3)
    h.engine.deploy(h.staff, FLOW_DIR)
    for i in range(40):
        h.engine.start(h.staff, "flow", f"T{i}", {"key": f"T{i}"})
    h.run_jobs()
    with session_scope() as s:
        CLOCK.advance(s, parse_duration("P8D"), allowed=True)
    return h


def _firing(hold: int = 0, start_at: float = 0.0, pause: float = 0.0) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", FIRE, str(hold), str(start_at), str(pause)], cwd=ROOT,
                            env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _fired(process: subprocess.Popen[str]) -> int:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return int(out.split("fired")[-1])


def _checked() -> Counter[str]:
    with session_scope() as s:
        return Counter(s.scalars(select(AuditEvent.instance_id).where(AuditEvent.action == "timers_checked")))


def _reminders() -> list[str]:
    with session_scope() as s:
        return list(s.scalars(select(Job.instance_id).where(Job.element_id == "remind")))


def test_two_processes_firing_one_due_set_fire_each_instance_once(due: Harness) -> None:
    start_at = time.time() + 8  # both have started up by then, even on a loaded machine
    processes = [_firing(start_at=start_at, pause=0.02), _firing(start_at=start_at, pause=0.02)]
    fired = [_fired(p) for p in processes]
    assert sum(fired) == 40, fired  # between them every instance, none twice
    assert min(fired) > 0, fired  # they did race: each fired batches the other skipped
    checked = _checked()
    assert len(checked) == 40 and set(checked.values()) == {1}
    assert len(_reminders()) == len(set(_reminders())) == 40
    assert due.engine.fire_due_timers(limit=None) == 0


def test_a_process_killed_mid_batch_loses_no_timer(due: Harness) -> None:
    frozen = _firing(hold=7)  # two batches committed, the third open when it is killed
    assert frozen.stdout is not None
    for line in frozen.stdout:
        if line.strip() == "holding":
            break
    frozen.send_signal(signal.SIGKILL)
    frozen.wait(30)
    survivors = len(_checked())
    assert survivors == 6  # the two committed batches; the killed one's rows rolled back
    # Its locks went with its connection: the next tick fires the rest, each once.
    deadline = time.monotonic() + 30
    fired = 0
    while fired + survivors < 40 and time.monotonic() < deadline:
        fired += due.engine.fire_due_timers(limit=None)
    assert fired == 34
    assert set(_checked().values()) == {1} and len(_checked()) == 40
    assert len(_reminders()) == len(set(_reminders())) == 40


def test_a_batch_with_a_failing_instance_still_fires_the_others_on_postgres(
        due: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = due.engine
    save_fails_for(engine, "T5", monkeypatch)
    assert engine.fire_due_timers(limit=None) == 40
    assert engine.fire_due_timers(limit=None) == 0  # T5 does not fire again and again
    assert len(_reminders()) == 39
    with session_scope() as s:
        [incident] = s.scalars(select(Incident)).all()
        broken = s.get(Instance, incident.instance_id)
        assert broken is not None and broken.business_key == "T5" and broken.has_incident
        assert broken.next_due_at is None and "the diagram broke" in incident.error
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == broken.id, AuditEvent.action == "timers_checked")) == 0


def test_rows_written_in_one_statement_read_back_as_the_orm_writes_them(due: Harness) -> None:
    with session_scope() as s:
        before = {i.id: (i.version, i.next_due_at) for i in s.scalars(select(Instance))}
    started = due.engine.now()
    assert due.engine.fire_due_timers(limit=None) == 40
    with session_scope() as s:
        saved = {i.id: i for i in s.scalars(select(Instance))}
        events = s.scalars(select(AuditEvent).where(AuditEvent.actor == "timer")).all()
    for instance in saved.values():
        version, due_at = before[instance.id]
        assert instance.version == version + 1
        assert instance.updated_at.tzinfo is not None and instance.updated_at >= started
        assert instance.status == "running" and instance.next_due_at is not None
        assert instance.next_due_at > due_at  # the next reminder, a week on
        assert instance.projected and instance.projected["jobs"]  # the reminder's job
    # The audit rows carry their advance's time (the instance's updated_at) and their details.
    assert {e.action for e in events} >= {"timers_checked"} and len({e.instance_id for e in events}) == 40
    assert all(e.at == saved[e.instance_id].updated_at and isinstance(e.detail, dict) for e in events)
    view = due.engine.instance(due.staff, events[0].instance_id)  # restored from the bulk-written state
    assert view.status == "running" and view.data["key"] == saved[events[0].instance_id].business_key
