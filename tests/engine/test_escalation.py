"""Escalation policies and the sweep, on the controllable clock: reminders, escalation to the
coordinators and the office manager across weekends and holidays, exactly once per level (two
schedulers at once), and every missed step once, in due order, after a scheduler was down."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from dateutil.easter import easter
from sqlalchemy import select

from certflow.bootstrap import build_engine
from certflow.clock import CLOCK
from certflow.engine.errors import DeployError, Forbidden, InvalidInput
from certflow.engine.facade import Actor
from certflow.localtime import LOCAL_TZ
from certflow.settings import reset_settings
from certflow.store.db import session_scope
from certflow.store.communications import EmailMessage
from certflow.store.models import AuditEvent
from tests.support import MUTATION_RUN, ROOT, Harness

DATA = ROOT / "tests" / "engine" / "data_escalation"
YEAR = datetime.now(timezone.utc).year + 1  # always ahead of the real clock
# A mutant that makes the sweep loop for ever fails in seconds here, not at mutmut's CPU limit
# (minutes per mutant); the normal suite keeps its usual limit.
pytestmark = pytest.mark.timeout(20 if MUTATION_RUN else 300)
EASTER = easter(YEAR)
STEPS = ("escalation_reminder", "task_escalated")


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ).astimezone(timezone.utc)


def processes(tmp: Path, with_policy: bool = True) -> Path:
    root = tmp / "processes"
    shutil.copytree(DATA, root, dirs_exist_ok=True)
    if not with_policy:
        (root / "casework" / "escalation.json").unlink()
    shutil.copytree(ROOT / "processes" / "shared", root / "shared", dirs_exist_ok=True)
    ascension = EASTER + timedelta(days=39)
    (root / "shared" / "closing_days.json").write_text(json.dumps({
        "equated_days": [{"date": (ascension + timedelta(days=1)).isoformat(), "name": "vrijdag na Hemelvaartsdag"}],
        "closing_days": []}))
    return root


@pytest.fixture
def h(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    return _harness(tmp_path, monkeypatch)


def _harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_policy: bool = True) -> Harness:
    monkeypatch.setenv("CERTFLOW_PROCESSES_DIR", str(processes(tmp_path, with_policy)))
    reset_settings()
    harness = Harness(build_engine())
    harness.engine.deploy(harness.staff)
    harness.user("ada", ["assessor"])
    harness.user("abe", ["assessor"])
    harness.user("cas", ["candidate"])
    harness.user("cor", ["coordinator"], staff=True)
    harness.user("mo", ["office_manager"], staff=True)
    return harness


def travel(to: datetime) -> None:
    with session_scope() as session:
        CLOCK.advance(session, to - CLOCK.now(), allowed=True)


def start(h: Harness, key: str = "CASE-1") -> str:
    return h.engine.start(h.staff, "casework", key, {"assessor": "ada", "candidate": "cas"}).id


def steps(task_id: str | None = None) -> list[dict[str, Any]]:
    with session_scope() as s:
        query = select(AuditEvent).where(AuditEvent.action.in_(STEPS)).order_by(AuditEvent.id)
        if task_id:
            query = query.where(AuditEvent.task_id == task_id)
        return [{"element": e.element_id, "task": e.task_id, "at": e.at, **e.detail} for e in s.scalars(query)]


def mails() -> list[tuple[str, str]]:
    with session_scope() as s:
        rows = s.scalars(select(EmailMessage).order_by(EmailMessage.created_at, EmailMessage.recipient))
        return [(m.recipient, m.template) for m in rows if m.status == "sent"]


def task(h: Harness, element: str, instance_id: str) -> Any:
    return next(t for t in h.engine.instance(h.staff, instance_id).open_tasks if t.element_id == element)


def test_working_day_due_dates_reminder_escalation_and_second_level_across_easter(h: Harness) -> None:
    thursday = EASTER - timedelta(days=3)  # before Good Friday
    travel(local(thursday, 10))
    instance = start(h)
    assess = task(h, "assess", instance)
    # 2 working days: Good Friday, the weekend and Easter Monday do not count -> end of Wednesday
    assert assess.due_at == local(EASTER + timedelta(days=4))
    assert assess.next_escalation_at == local(EASTER + timedelta(days=3))  # reminder: 1 working day before

    travel(local(EASTER + timedelta(days=2), 23))  # Tuesday night: nothing is due yet
    assert h.engine.sweep_escalations() == 0
    travel(local(EASTER + timedelta(days=3), 0, 30))
    assert h.engine.sweep_escalations() == 1
    [reminder] = steps(assess.id)
    assert (reminder["step"], reminder["to"]) == ("reminder", "ada")
    assert reminder["planned_at"] == local(EASTER + timedelta(days=3)).isoformat()
    assert mails() == [("ada", "escalation/reminder")]  # the assessor holding it

    travel(local(EASTER + timedelta(days=4), 1))  # the due time passed
    assert h.engine.sweep_escalations() == 1
    assert h.engine.sweep_escalations() == 0  # exactly once per level
    cor, mo = Actor("cor", ("coordinator",), True), Actor("mo", ("office_manager",), True)
    [escalated] = h.engine.escalations(cor)
    assert escalated.task.id == assess.id and escalated.escalated_to == "coordinator"
    assert escalated.task.assignee == "ada"  # the diagram names her: kept, not back in the group (see _on_escalation)
    assert "passed" in escalated.why and escalated.level == 2
    assert [e["action"] for e in escalated.history] == ["escalation_reminder", "task_escalated"]
    assert h.engine.escalations(mo) == []
    assert mails()[1:] == [("cor", "escalation/escalated")]  # every coordinator

    # second level 2 working days later: Friday, then Monday (the weekend does not count)
    assert escalated.next_step_at == local(EASTER + timedelta(days=8))
    travel(local(EASTER + timedelta(days=7), 23))
    assert h.engine.sweep_escalations() == 0
    travel(local(EASTER + timedelta(days=8), 0, 5))
    assert h.engine.sweep_escalations() == 1
    assert [v.task.id for v in h.engine.escalations(mo)] == [assess.id]
    assert h.engine.escalations(cor) == []
    assert [s["step"] for s in steps(assess.id)] == ["reminder", "escalation", "second_level"]
    assert mails()[2:] == [("mo", "escalation/escalated")]


def test_a_scheduler_stopped_for_days_applies_every_missed_step_once_in_due_order(h: Harness) -> None:
    monday = EASTER + timedelta(days=8)
    travel(local(monday, 9))
    instance = start(h)
    travel(local(monday + timedelta(days=30), 9))  # nobody swept meanwhile
    applied = h.engine.sweep_escalations()
    done = steps()
    assert applied == len(done) == 5  # assess: reminder, escalation, second level; answer: reminder, escalation
    planned = [s["planned_at"] for s in done]
    assert planned == sorted(planned)  # in due order
    assert all(s["at"] > datetime.fromisoformat(s["planned_at"]) for s in done)  # both times kept
    assert h.engine.sweep_escalations() == 0
    answer = task(h, "answer", instance)
    assert answer.escalated_to == "office" and answer.assignee == "cas"  # policy: keep the assignee


def test_candidates_calendar_terms_move_off_holidays(h: Harness) -> None:
    # answer: P14D with move_to_working_day; 14 days after this Friday is Good Friday
    travel(local(EASTER - timedelta(days=16), 11))
    instance = start(h)
    assert task(h, "answer", instance).due_at == local(EASTER + timedelta(days=3))  # end of Tuesday


def test_coordinators_reassign_extend_or_take_over_in_one_step(h: Harness) -> None:
    travel(local(EASTER + timedelta(days=8), 9))
    instance = start(h)
    travel(local(EASTER + timedelta(days=12), 9))
    h.engine.sweep_escalations()
    cor = Actor("cor", ("coordinator",), True)
    assess = task(h, "assess", instance)
    ada = Actor("ada", ("assessor",))
    with pytest.raises(Forbidden):
        h.engine.escalation_reassign(ada, assess.id, "abe")
    with pytest.raises(InvalidInput, match="reason"):
        h.engine.escalation_extend(cor, assess.id, "5 werkdagen", " ")
    view = h.engine.escalation_reassign(cor, assess.id, "abe", "ada is ill")
    assert view.task.assignee == "abe" and view.escalated_to is None
    assert h.engine.escalations(cor) == []
    assert [t.id for t in h.engine.inbox(Actor("abe", ("assessor",)))] == [assess.id]

    answer = task(h, "answer", instance)
    travel(local(EASTER + timedelta(days=30), 9))
    h.engine.sweep_escalations()
    office = Actor("olga", ("office",), True)
    assert [v.task.id for v in h.engine.escalations(office)] == [answer.id]
    extended = h.engine.escalation_extend(office, answer.id, "5 werkdagen", "candidate asked for time")
    assert extended.task.due_at is not None and extended.task.due_at > h.engine.now()
    assert extended.level == 0 and extended.next_step_at is not None
    assert extended.history[-1]["detail"]["reason"] == "candidate asked for time"

    travel(local(EASTER + timedelta(days=60), 9))
    h.engine.sweep_escalations()
    mo = Actor("mo", ("office_manager",), True)
    [again] = h.engine.escalations(mo)
    # An assessor's work is not the office manager's to take over (and then complete).
    with pytest.raises(InvalidInput, match="^mo is not in group 'assessor'$"):
        h.engine.escalation_take_over(mo, again.task.id)
    assert h.engine.escalation(mo, again.task.id).task.assignee == "abe"
    h.engine.complete(Actor("abe", ("assessor",)), again.task.id, {"done": True})
    with session_scope() as s:
        completed = s.scalars(select(AuditEvent).where(AuditEvent.action == "task_completed_by_user")).one()
    assert completed.detail["due_at"] == again.task.due_at.isoformat()  # the due time outlives the task


def test_two_schedulers_at_once_apply_each_level_exactly_once(h: Harness) -> None:
    travel(local(EASTER + timedelta(days=8), 9))
    for n in range(15):
        start(h, f"CASE-{n}")
    travel(local(EASTER + timedelta(days=40), 9))
    _race(lambda: build_engine().sweep_escalations(batch=4))
    done = steps()
    keys = [(s["task"], s["step"]) for s in done]
    assert len(keys) == len(set(keys)) == 15 * 5


def _race(sweep: Any) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sweep()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.integration
def test_two_schedulers_on_postgresql_skip_each_others_tasks(pg_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    h = _harness(tmp_path, monkeypatch)
    travel(local(EASTER + timedelta(days=8), 9))
    for n in range(40):
        start(h, f"CASE-{n}")
    travel(local(EASTER + timedelta(days=40), 9))
    _race(lambda: build_engine().sweep_escalations(batch=3))
    keys = [(s["task"], s["step"]) for s in steps()]
    assert len(keys) == len(set(keys)) == 40 * 5


def test_a_version_without_a_policy_file_escalates_by_the_default_policy(sqlite_url: str, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    h = _harness(tmp_path, monkeypatch, with_policy=False)
    travel(local(EASTER + timedelta(days=8), 9))
    instance = start(h)
    travel(local(EASTER + timedelta(days=40), 9))
    h.engine.sweep_escalations()
    assess = task(h, "assess", instance)
    assert assess.escalated_to == "office_manager" and assess.assignee == "ada"
    assert [s["step"] for s in steps(assess.id)] == ["escalation", "second_level"]
    assert {s["policy"] for s in steps()} == {"default"}


def test_deploy_refuses_a_bad_policy_with_file_and_element(sqlite_url: str, tmp_path: Path) -> None:
    root = processes(tmp_path)
    (root / "casework" / "escalation.json").write_text(json.dumps({
        "defaults": {"remind_before": "2 dagen", "escalate_to": "coordinator"},
        "tasks": {"assess": {"on_escalation": "shout"}, "nope": {}, "answer": {"colour": "red"}}}))
    h = Harness(build_engine())
    with pytest.raises(DeployError) as caught:
        h.engine.deploy(h.staff, root)
    found = {(p.file, p.element, p.message.split(":")[0]) for p in caught.value.problems}
    assert ("casework/escalation.json", None, "defaults") in found            # the bad term
    assert ("casework/escalation.json", "assess", "policy of assess") in found  # the bad action
    assert any(p.element == "nope" and "no user task" in p.message for p in caught.value.problems)
    assert any(p.element == "answer" and "'colour'" in p.message for p in caught.value.problems)

