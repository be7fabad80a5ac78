"""Working days inside diagram timer expressions: the sandbox's ``deadline`` and
``working_day`` helpers follow the Algemene termijnenwet calendar (here across Good Friday and
Easter Monday), and a diagram timer written with them fires at the end of the last working
day, not after so many calendar days."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from certflow.engine.facade import Actor
from certflow.engine.sandbox import SandboxEnvironment
from certflow.localtime import to_local
from tests.engine.test_escalation import EASTER, local, travel
from tests.support import Harness

THURSDAY = EASTER - timedelta(days=3)  # Good Friday and Easter Monday follow
DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs"
                  targetNamespace="http://certflow.test/waiting">
  <bpmn:process id="waiting" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="term" name="Two working days">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition>
        <bpmn:timeDate xsi:type="bpmn:tFormalExpression">deadline("2 werkdagen")</bpmn:timeDate>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="term"/>
    <bpmn:sequenceFlow id="f2" sourceRef="term" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def _env() -> SandboxEnvironment:
    return SandboxEnvironment(now=lambda: local(THURSDAY, 10), isolated=False)


def test_deadline_and_working_day_skip_weekends_and_holidays(sqlite_url: str) -> None:
    data: dict[str, object] = {"friday": (THURSDAY + timedelta(days=1)).isoformat()}
    _env().execute("two = deadline('2 werkdagen')\n"
                   "calendar = deadline('P1D')\n"
                   "moved = deadline('P1D', True)\n"
                   "next_one = working_day(friday)\n"
                   "ends = term_end(friday)\n"
                   "thursday_ends = term_end(today())\n", data)
    tuesday, wednesday = EASTER + timedelta(days=2), EASTER + timedelta(days=3)
    # A term ends at the end of its last day (midnight, Dutch time).
    assert _parse(data["two"]) == local(wednesday + timedelta(days=1))
    assert to_local(_parse(data["calendar"])).date() == THURSDAY + timedelta(days=1)  # Good Friday
    assert _parse(data["moved"]) == local(tuesday + timedelta(days=1))  # off Good Friday, past Easter
    assert data["next_one"] == tuesday.isoformat()
    # a term whose last day is Good Friday runs through Tuesday; one ending on a working day ends with it
    assert _parse(data["ends"]) == local(tuesday + timedelta(days=1))
    assert _parse(data["thursday_ends"]) == local(THURSDAY + timedelta(days=1))


def test_at_local_is_nine_oclock_dutch_time_in_summer_and_winter(sqlite_url: str) -> None:
    data: dict[str, object] = {"july": "2027-07-01", "december": "2027-12-01",
                               "spring_change": "2027-03-28", "autumn_change": "2027-10-31"}
    _env().execute("summer = at_local(july, '09:00')\n"
                   "winter = at_local(december, '09:00')\n"
                   "after_spring_change = at_local(spring_change, '09:00')\n"
                   "after_autumn_change = at_local(autumn_change, '09:00')\n"
                   "half_past = at_local(december + 'T23:00:00+00:00', '09:30')\n", data)
    assert data["summer"] == "2027-07-01T09:00:00+02:00"  # 07:00 UTC
    assert data["winter"] == "2027-12-01T09:00:00+01:00"  # 08:00 UTC
    assert data["after_spring_change"] == "2027-03-28T09:00:00+02:00"
    assert data["after_autumn_change"] == "2027-10-31T09:00:00+01:00"
    assert data["half_past"] == "2027-12-01T09:30:00+01:00"
    for bad in ("at_local(july, '09:00+01:00')", "at_local(july, 9)", "at_local(july, 'nine')"):
        with pytest.raises(Exception, match="at_local|Invalid isoformat"):
            _env().execute(f"x = {bad}\n", dict(data))


def test_a_diagram_timer_in_working_days_fires_after_the_holidays(harness: Harness, tmp_path: Path) -> None:
    folder = tmp_path / "processes" / "waiting"
    folder.mkdir(parents=True)
    (folder / "waiting.bpmn").write_text(DIAGRAM)
    travel(local(THURSDAY, 10))
    harness.engine.deploy(Actor.system(), tmp_path / "processes")
    started = harness.engine.start(harness.staff, "waiting", "W-1", {})
    travel(local(EASTER + timedelta(days=3), 22))  # Wednesday evening: two working days not over
    harness.engine.fire_due_timers()
    assert harness.engine.instance(harness.staff, started.id).status == "running"
    travel(local(EASTER + timedelta(days=4), 0, 5))  # just after: it fires
    harness.engine.fire_due_timers()
    assert harness.engine.instance(harness.staff, started.id).status == "completed"


def _parse(value: object):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromisoformat(str(value))
