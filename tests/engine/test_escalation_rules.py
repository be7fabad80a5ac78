"""The escalation sweep and the escalation inbox as a coordinator and an assessor notice them:
each level happens once, at its planned time, with an audit row saying which policy, which
level, planned and actual time; the inbox shows my groups' escalations, longest waiting
first; reassign only to a member of the task's group, extend only with a reason, take over;
and every refusal names what was wrong and changes nothing.

The clock starts on the first Monday of February next year: no holidays for weeks, so the
working-day arithmetic below is plain weekdays (tests/engine/test_escalation.py crosses Easter).
The casework policy (tests/engine/data_escalation): ``assess`` is due in 2 working days,
reminder 1 working day before, escalation to the coordinators, back to the assessors' queue,
second level to the office manager 2 working days later."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from certflow.bootstrap import build_engine
from certflow.clock import Clock
from certflow.engine.errors import Forbidden, InvalidInput, NotFound
from certflow.engine.facade import Actor
from certflow.engine.policies import DEFAULT
from certflow.settings import get_settings, reset_settings
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent
from tests.engine.test_escalation import YEAR, _harness, local, mails, processes, steps, task, travel
from tests.support import MUTATION_RUN, Harness

FEB = date(YEAR, 2, 2)
# A mutant that makes the sweep loop for ever fails in seconds here, not at mutmut's CPU limit
# (minutes per mutant); the normal suite keeps its usual limit.
pytestmark = pytest.mark.timeout(20 if MUTATION_RUN else 300)
MON = FEB + timedelta(days=(7 - FEB.weekday()) % 7)  # the first Monday from 2 February
COR = Actor("cor", ("coordinator",), True)
MO = Actor("mo", ("office_manager",), True)
ADA = Actor("ada", ("assessor",))
COCO = Actor("coco", ("coordinator",))  # a coordinator who is not staff


@pytest.fixture(autouse=True)
def frozen_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ``travel`` moves time here, so "exactly at its planned time" is exact."""
    wall = datetime.now(timezone.utc)
    monkeypatch.setattr(Clock, "now", lambda self: wall + self.offset)


@pytest.fixture
def h(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    harness = _harness(tmp_path, monkeypatch)
    harness.user("coco", ["coordinator"])
    return harness


def start(h: Harness, key: str = "CASE-1", assessor: str | None = "ada") -> str:
    return h.engine.start(h.staff, "casework", key, {"assessor": assessor, "candidate": "cas"}).id


def audit(action: str) -> list[AuditEvent]:
    with session_scope() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def escalated_case(h: Harness, key: str = "CASE-1") -> tuple[str, Any]:
    """A case started Monday 09:00 whose assessment escalated at its due time (end of Wednesday)."""
    travel(local(MON, 9))
    instance = start(h, key)
    travel(local(MON + timedelta(days=3)))
    assert h.engine.sweep_escalations() == 2  # the reminder, missed, then the escalation
    return instance, task(h, "assess", instance)


# -- the sweep -----------------------------------------------------------------------------------
def test_each_level_once_at_its_planned_time_audited_with_policy_level_and_both_times(h: Harness) -> None:
    travel(local(MON, 9))
    instance = start(h)
    due = local(MON + timedelta(days=3))  # 2 working days: the end of Wednesday
    assert task(h, "assess", instance).due_at == due

    travel(local(MON + timedelta(days=2)) - timedelta(seconds=1))
    assert h.engine.sweep_escalations() == 0
    travel(local(MON + timedelta(days=2)))  # exactly the reminder's time: 1 working day before
    assert h.engine.sweep_escalations() == 1
    assert h.engine.sweep_escalations() == 0
    common = {"policy": "casework/defaults", "due_at": due.isoformat(), "group": "assessor",
              "title": "Assess the case", "business_key": "CASE-1"}
    [reminder] = audit("escalation_reminder")
    assert (reminder.actor, reminder.element_id, reminder.at) == ("escalation", "assess", local(MON + timedelta(days=2)))
    assert reminder.detail == {**common, "step": "reminder", "level": 1, "to": "ada", "assignee": "ada",
                               "planned_at": local(MON + timedelta(days=2)).isoformat()}

    travel(due)  # exactly the due time
    assert h.engine.sweep_escalations() == 1
    [escalation] = audit("task_escalated")
    assert escalation.at == due and escalation.actor == "escalation"
    assert escalation.detail == {**common, "step": "escalation", "level": 2, "to": "coordinator",
                                 "assignee": "ada", "planned_at": due.isoformat(),
                                 "on_escalation": "return_to_group not applied to a task the process "
                                                  "gives to a person; kept"}
    [view] = h.engine.escalations(COR)
    assert (view.escalated_to, view.escalated_since, view.level) == ("coordinator", due, 2)
    # The diagram names ada: back in the group, any assessor would see and take it, past the
    # rules her assignment was held to (the coordinator reassigns it under them instead).
    assert view.task.assignee == "ada"
    assert view.task.form_schema == {"type": "object", "properties": {"done": {"type": "boolean"}},
                                     "additionalProperties": False}  # the form the coordinator can open
    assert view.why == f"due {due.isoformat()} passed; policy casework/defaults, level 2"
    second = local(MON + timedelta(days=7))  # 2 working days after Wednesday: Friday, Monday
    assert view.next_step_at == second

    late = second + timedelta(hours=8)  # the scheduler was down: applied late, both times kept
    travel(late)
    assert h.engine.sweep_escalations() == 1
    assert h.engine.sweep_escalations() == 0
    last = audit("task_escalated")[-1]
    assert last.at == late
    assert last.detail == {**common, "step": "second_level", "level": 3, "to": "office_manager",
                           "assignee": "ada", "planned_at": second.isoformat()}
    [view] = h.engine.escalations(MO)
    assert (view.escalated_since, view.level, view.next_step_at) == (late, 3, None)
    assert view.why == f"due {due.isoformat()} passed; policy casework/defaults, level 3"
    assert [e["action"] for e in view.history] == ["escalation_reminder", "task_escalated", "task_escalated"]
    assert h.engine.escalations(COR) == []
    # Taking it over is for a manager who is an assessor too: the assessment is the group's work.
    with pytest.raises(InvalidInput, match="^mo is not in group 'assessor'$"):
        h.engine.escalation_take_over(MO, view.task.id)
    mo_assessor = Actor("mo", ("office_manager", "assessor"), True)
    assert h.engine.escalation_take_over(mo_assessor, view.task.id).task.assignee == "mo"
    assert audit("escalation_taken_over")[0].detail == {"from": "ada", "to": "mo", "reason": "",
                                                        "escalated_to": "office_manager"}


def test_a_reminder_for_a_task_nobody_holds_is_for_its_group_and_mails_nobody(h: Harness) -> None:
    travel(local(MON, 9))
    start(h, assessor=None)
    travel(local(MON + timedelta(days=2), 1))
    assert h.engine.sweep_escalations() == 1
    [reminder] = audit("escalation_reminder")
    assert (reminder.detail["to"], reminder.detail["assignee"]) == ("assessor", None)
    assert mails() == []


def test_the_second_level_keeps_whom_the_coordinator_gave_the_task_to(h: Harness) -> None:
    instance, assess = escalated_case(h)
    view = h.engine.escalation_reassign(COR, assess.id, "abe")
    assert view.task.assignee == "abe" and view.escalated_to is None and view.escalated_since is None
    assert [e["action"] for e in view.history][-1] == "escalation_reassigned"
    [row] = audit("escalation_reassigned")
    assert row.actor == "cor" and row.detail == {"from": "ada", "to": "abe", "reason": "", "escalated_to": "coordinator"}
    assert (row.instance_id, row.task_id, row.element_id) == (instance, assess.id, "assess")
    travel(local(MON + timedelta(days=7), 1))
    assert h.engine.sweep_escalations() == 1
    assert task(h, "assess", instance).assignee == "abe"  # only the first escalation returns it
    assert task(h, "assess", instance).escalated_to == "office_manager"


def test_a_closing_day_added_after_the_escalation_moves_the_second_level(h: Harness) -> None:
    instance, _ = escalated_case(h)
    friday = MON + timedelta(days=4)
    path = get_settings().processes_dir / "shared" / "closing_days.json"
    path.write_text(json.dumps({"closing_days": [{"date": friday.isoformat(), "name": "heidag"}]}))
    travel(local(MON + timedelta(days=7), 1))  # where the second level was planned
    assert h.engine.sweep_escalations() == 0
    assert task(h, "assess", instance).next_escalation_at == local(MON + timedelta(days=8))
    travel(local(MON + timedelta(days=8), 0, 5))
    assert h.engine.sweep_escalations() == 1
    assert audit("task_escalated")[-1].detail["planned_at"] == local(MON + timedelta(days=8)).isoformat()


def test_a_step_the_default_policy_no_longer_has_is_left_alone(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A version without escalation.json follows the default in the code; an upgrade that drops
    its second level leaves tasks escalated under it where they are, without a failing sweep."""
    h = _harness(tmp_path, monkeypatch, with_policy=False)
    travel(local(MON, 9))
    instance = start(h)
    travel(local(MON + timedelta(days=3)))
    assert h.engine.sweep_escalations() == 1  # the default: no reminder, escalation at the due time
    assert task(h, "assess", instance).next_escalation_at == local(MON + timedelta(days=10))  # 5 working days on
    monkeypatch.setitem(DEFAULT, "second_level_to", None)
    travel(local(MON + timedelta(days=10), 1))
    assert h.engine.sweep_escalations() == 0
    assess = task(h, "assess", instance)
    assert (assess.escalated_to, assess.escalation_level, assess.next_escalation_at) == ("coordinator", 1, None)


def test_small_batches_still_apply_every_task_s_steps_in_due_order_and_count_them(h: Harness) -> None:
    travel(local(MON, 9))
    start(h, "CASE-A")
    travel(local(MON + timedelta(days=1), 9))
    start(h, "CASE-B")
    travel(local(MON + timedelta(days=25), 9))
    assert h.engine.sweep_escalations(batch=1) == 10  # 2 cases x (3 for assess + 2 for answer)
    planned = [s["planned_at"] for s in steps()]
    assert len(planned) == 10 and planned == sorted(planned)
    first = next(s["task"] for s in steps() if s["element"] == "assess")  # CASE-A's assessment
    history = h.engine.escalation(MO, first).history  # its own steps, not its case's answer task's
    assert [e["action"] for e in history] == ["escalation_reminder", "task_escalated", "task_escalated"]
    assert h.engine.sweep_escalations(batch=1) == 0


def test_a_sweep_stops_at_its_limit_and_the_next_one_goes_on(h: Harness) -> None:
    travel(local(MON, 9))
    start(h, "CASE-A")
    start(h, "CASE-B")
    travel(local(MON + timedelta(days=25), 9))
    assert h.engine.sweep_escalations(limit=3, batch=1) == 3
    assert len(steps()) == 3
    assert h.engine.sweep_escalations() == 7


def test_the_people_are_told_per_batch_and_a_failing_mail_server_loses_no_step(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    told: list[list[str]] = []
    h.engine.notify = lambda events: told.append([e["detail"]["step"] for e in events])
    travel(local(MON, 9))
    start(h)
    travel(local(MON + timedelta(days=3)))  # exactly the due time, the reminder missed
    assert h.engine.sweep_escalations() == 2
    assert told == [["reminder", "escalation"]]  # one batch, in order, and no empty one after it

    def down(events: list[dict[str, Any]]) -> None:
        raise OSError("mail server down")
    h.engine.notify = down
    travel(local(MON + timedelta(days=7), 1))
    with caplog.at_level(logging.ERROR, logger="certflow.engine.escalation"):
        assert h.engine.sweep_escalations() == 1
    assert [r.getMessage() for r in caplog.records] == ["escalation notices for 1 step(s) failed"]
    assert [s["step"] for s in steps()] == ["reminder", "escalation", "second_level"]
    assert h.engine.sweep_escalations() == 0


@pytest.mark.parametrize(("target", "assignee", "outcome"), [
    ("abe", "abe", "reassign:abe"),
    ("cas", "ada", "reassign:cas impossible (no such user in 'assessor'); kept"),
    ("nobody", "ada", "reassign:nobody impossible (no such user in 'assessor'); kept"),
])
def test_a_policy_that_reassigns_on_escalation_gives_it_to_a_member_of_the_group_only(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, assignee: str,
        outcome: str) -> None:
    root = processes(tmp_path)
    policy = json.loads((root / "casework" / "escalation.json").read_text())
    policy["tasks"]["assess"] = {"on_escalation": f"reassign:{target}"}
    (root / "casework" / "escalation.json").write_text(json.dumps(policy))
    monkeypatch.setenv("CERTFLOW_PROCESSES_DIR", str(root))
    reset_settings()
    h = Harness(build_engine())
    h.engine.deploy(h.staff)
    for name, groups in (("ada", ["assessor"]), ("abe", ["assessor"]), ("cas", ["candidate"])):
        h.user(name, groups)
    travel(local(MON, 9))
    instance = start(h)
    travel(local(MON + timedelta(days=3), 1))
    h.engine.sweep_escalations()
    escalation = audit("task_escalated")[0]
    assert (escalation.detail["policy"], escalation.detail["on_escalation"]) == ("casework/assess", outcome)
    assert task(h, "assess", instance).assignee == assignee


# -- the escalation inbox ------------------------------------------------------------------------
def test_the_inbox_shows_my_groups_escalations_longest_waiting_first(h: Harness) -> None:
    travel(local(MON, 9))
    first = start(h, "CASE-A")
    travel(local(MON + timedelta(days=1), 9))
    second = start(h, "CASE-B")
    travel(local(MON + timedelta(days=3), 1))
    h.engine.sweep_escalations()  # CASE-A escalates
    travel(local(MON + timedelta(days=4), 1))
    h.engine.sweep_escalations()  # CASE-B a day later
    order = [task(h, "assess", first).id, task(h, "assess", second).id]
    listed = h.engine.escalations(COCO)
    assert [v.task.id for v in listed] == order
    # The list reads every task's history at once: each keeps its own, as when opened alone.
    assert listed == [h.engine.escalation(COCO, task_id) for task_id in order]
    assert [[step["action"] for step in v.history] for v in listed] == [["escalation_reminder", "task_escalated"]] * 2
    assert [v.task.id for v in h.engine.escalations(COCO, group="coordinator")] == order
    assert [v.task.id for v in h.engine.escalations(MO, group="coordinator")] == order  # staff: any group
    assert h.engine.escalations(MO) == []
    assert h.engine.escalations(ADA) == []
    # CASE-A, given a day more, escalates again after CASE-B: the order is by escalation
    h.engine.escalation_extend(COR, order[0], "P1D", "one more day")
    travel(local(MON + timedelta(days=5), 2))
    h.engine.sweep_escalations()
    assert [v.task.id for v in h.engine.escalations(COCO)] == order[::-1]
    with pytest.raises(Forbidden, match="^you are not in group 'office_manager'$"):
        h.engine.escalations(COCO, group="office_manager")


def test_only_the_group_it_escalated_to_may_open_or_handle_it(h: Harness) -> None:
    instance, assess = escalated_case(h)
    with pytest.raises(Forbidden, match=f"^task {assess.id} is not escalated to a group of yours$"):
        h.engine.escalation(ADA, assess.id)
    with pytest.raises(Forbidden):
        h.engine.escalation_take_over(ADA, assess.id)
    assert h.engine.escalation(COCO, assess.id).escalated_to == "coordinator"
    with pytest.raises(InvalidInput, match="^coco is not in group 'assessor'$"):  # not an assessor
        h.engine.escalation_take_over(COCO, assess.id, "I know the case")
    taken = h.engine.escalation_take_over(Actor("coco", ("coordinator", "assessor")), assess.id, "I know the case")
    assert taken.task.assignee == "coco" and taken.escalated_to is None
    assert {k: taken.history[-1][k] for k in ("actor", "action")} == {"actor": "coco", "action": "escalation_taken_over"}
    [row] = audit("escalation_taken_over")
    assert row.actor == "coco" and row.at == h.engine.now()
    assert (row.instance_id, row.task_id, row.element_id) == (instance, assess.id, "assess")
    assert row.detail == {"from": "ada", "to": "coco", "reason": "I know the case", "escalated_to": "coordinator"}
    with pytest.raises(Forbidden):  # no longer escalated: not for a coordinator who is not staff
        h.engine.escalation(COCO, assess.id)
    with pytest.raises(InvalidInput, match=f"^task {assess.id} is not escalated$"):
        h.engine.escalation_reassign(COR, assess.id, "abe")


def test_reassign_only_to_an_existing_member_of_the_task_s_group(h: Harness) -> None:
    _, assess = escalated_case(h)
    with pytest.raises(NotFound, match="^no user 'nobody'$") as unknown:
        h.engine.escalation_reassign(COR, assess.id, "nobody")
    assert unknown.value.details["field"] == "assignee"
    with pytest.raises(InvalidInput, match="^cas is not in group 'assessor'$") as outsider:
        h.engine.escalation_reassign(COR, assess.id, "cas")
    assert outsider.value.details["field"] == "assignee"
    [still] = h.engine.escalations(COR)  # nothing changed
    assert still.task.id == assess.id and still.task.assignee == "ada" and len(audit("escalation_reassigned")) == 0
    view = h.engine.escalation_reassign(COR, assess.id, "abe", "ada is ill")
    assert view.task.assignee == "abe"
    assert audit("escalation_reassigned")[0].detail["reason"] == "ada is ill"


def test_extend_needs_a_reason_and_a_due_time_ahead_and_starts_the_policy_over(h: Harness) -> None:
    _, assess = escalated_case(h)
    due = local(MON + timedelta(days=3))
    for reason in ("", "  "):
        with pytest.raises(InvalidInput, match="^extending a due date needs a reason$") as caught:
            h.engine.escalation_extend(COR, assess.id, "5 werkdagen", reason)
        assert caught.value.details["field"] == "reason"
    with pytest.raises(InvalidInput, match=r"^due: 'soon' is neither .* \(or a date YYYY-MM-DD\)$") as bad:
        h.engine.escalation_extend(COR, assess.id, "soon", "x")
    assert bad.value.details["field"] == "due"
    yesterday = (MON + timedelta(days=2)).isoformat()  # its end is exactly now
    with pytest.raises(InvalidInput, match="^the new due time lies in the past$") as past:
        h.engine.escalation_extend(COR, assess.id, yesterday, "x")
    assert past.value.details["field"] == "due"
    # Beyond the calendar (these were a 500) or simply too far: at most a year.
    for far in ("9999-12-31", "P99999Y", "P999999999D", "P2913000D", "9999 werkdagen",
                (MON + timedelta(days=400)).isoformat()):
        with pytest.raises(InvalidInput, match="^the new due time can be at most a year from now$") as beyond:
            h.engine.escalation_extend(COR, assess.id, far, "x")
        assert beyond.value.details["field"] == "due"
    assert h.engine.escalations(COR)[0].task.due_at == due  # nothing changed

    friday = (MON + timedelta(days=4)).isoformat()
    fresh = build_engine()  # a web process just started: no definition read yet
    view = fresh.escalation_extend(COR, assess.id, f" {friday} ", "assessor back on Friday")
    new_due = local(MON + timedelta(days=5))  # the end of Friday
    assert (view.task.due_at, view.level, view.escalated_to) == (new_due, 0, None)
    assert view.next_step_at == local(MON + timedelta(days=4))  # the reminder again, 1 working day before
    assert view.history[-1]["action"] == "escalation_extended"
    assert view.why == f"due {due.isoformat()} passed; policy casework/defaults, level 2"  # the due that passed
    [row] = audit("escalation_extended")
    assert (row.actor, row.at) == ("cor", due)
    assert row.detail == {"old_due_at": due.isoformat(), "due_at": new_due.isoformat(),
                          "reason": "assessor back on Friday", "escalated_to": "coordinator"}
    travel(new_due)
    assert h.engine.sweep_escalations() == 2  # the reminder and the escalation, once each again
    assert [s["level"] for s in steps(assess.id)] == [1, 2, 1, 2]


def test_an_extension_so_short_that_the_reminder_is_already_late_skips_it(h: Harness) -> None:
    _, assess = escalated_case(h)  # now: Thursday 00:00
    view = h.engine.escalation_extend(COR, assess.id, "P1D", "one more day")
    friday = local(MON + timedelta(days=4))
    assert view.task.due_at == friday
    assert view.level == 1 and view.next_step_at == friday  # straight to the escalation
    travel(friday)
    assert h.engine.sweep_escalations() == 1
    assert [s["step"] for s in steps(assess.id)] == ["reminder", "escalation", "escalation"]
    # a working-day term from now ends at the end of its last working day: Monday, Tuesday
    again = h.engine.escalation_extend(COR, assess.id, "2 werkdagen", "again")
    assert again.task.due_at == local(MON + timedelta(days=9))
    assert again.level == 0 and again.next_step_at == local(MON + timedelta(days=8))
