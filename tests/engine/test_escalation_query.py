"""The sweep's query on PostgreSQL (``escalation.due_steps``), as a running office notices it:
the steps due first are taken first; a task another scheduler holds is skipped, not waited
for; and a case someone is working on (its instance row locked by an advance) still has its
due steps taken, since only the task rows are locked. Each runs the query itself with a short
``statement_timeout``, so a sweep that would wait fails here at once."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.exc import OperationalError

from certflow.engine.errors import InvalidInput
from certflow.engine.escalation import due_steps
from certflow.store.db import reset_engines
from certflow.store.models import HumanTask
from tests.engine.test_escalation import EASTER, _harness, local, start, travel

pytestmark = pytest.mark.integration
NOW = datetime.now(timezone.utc)


@pytest.fixture
def case(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """One case of the escalation test process on PostgreSQL, its own tasks kept quiet. The
    database is told to read tables whole, not through indexes (as it may for any table once
    it is large or its statistics change), so only an ORDER BY decides an order here."""
    with create_engine(pg_url, isolation_level="AUTOCOMMIT").connect() as conn:
        name = conn.scalar(text("SELECT current_database()"))
        for setting in ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"):
            conn.execute(text(f'ALTER DATABASE "{name}" SET {setting} = off'))
    reset_engines()
    h = _harness(tmp_path, monkeypatch)
    travel(local(EASTER + timedelta(days=8), 9))
    instance = start(h)
    db = create_engine(pg_url)
    with db.begin() as conn:
        conn.execute(text("UPDATE human_tasks SET next_escalation_at = NULL"))
    yield h, db, instance
    db.dispose()


def _tasks(db: Any, instance: str, ids: list[str], **columns: Any) -> None:
    """Tasks of ``instance``, written in the order given (a small table is read in the order it
    was written: a query without ORDER BY returns them so)."""
    with db.begin() as conn:
        conn.execute(insert(HumanTask), [dict(
            id=tid, instance_id=instance, process_id="casework", business_key="CASE-1", element_id="assess",
            title="Assess", candidate_group="assessor", priority=50, created_at=NOW, context={},
            escalation_level=0, **{k: v(n) for k, v in columns.items()}) for n, tid in enumerate(ids)])


@pytest.fixture
def due(case: Any) -> tuple[Any, str, list[str]]:
    """Five tasks of one case, all due, written latest-due first."""
    _, db, instance = case
    ids = [f"due-{n}" for n in range(5)]
    _tasks(db, instance, ids[::-1], due_at=lambda n: NOW - timedelta(hours=4 - n),
           next_escalation_at=lambda n: NOW - timedelta(hours=4 - n))
    return db, instance, ids


def _ids(conn: Any, size: int) -> list[str]:
    conn.execute(text("SET LOCAL statement_timeout = '2s'"))
    rows = conn.execute(due_steps(NOW, size).with_only_columns(HumanTask.id)).all()
    return [r[0] for r in rows]


def test_the_steps_due_first_are_taken_first(due: tuple[Any, str, list[str]]) -> None:
    db, _, ids = due
    with db.begin() as conn:
        assert _ids(conn, 2) == ["due-4", "due-3"]  # due 4 and 3 hours ago: the longest waiting
    with db.begin() as conn:
        assert _ids(conn, 10) == ids[::-1]


def test_tasks_another_scheduler_holds_are_skipped_not_waited_for(due: tuple[Any, str, list[str]]) -> None:
    """Two schedulers sweeping at once: the second takes the next tasks in due order, at once,
    and never the ones the first is working on."""
    db, _, _ = due
    with db.connect() as first:
        first.begin()
        assert _ids(first, 2) == ["due-4", "due-3"]
        with db.begin() as second:
            assert _ids(second, 2) == ["due-2", "due-1"]
        first.rollback()


def test_a_case_being_worked_on_still_has_its_due_steps_taken(due: tuple[Any, str, list[str]]) -> None:
    db, instance, _ = due
    with db.connect() as advance:  # an advance of the case holds its instance row
        advance.begin()
        advance.execute(text("SELECT id FROM instances WHERE id = :id FOR UPDATE"), {"id": instance})
        with db.begin() as conn:
            try:
                taken = _ids(conn, 2)
            except OperationalError as exc:  # the statement timeout: the sweep waited for the advance
                pytest.fail(f"the sweep waited for the case's advance: {exc.orig}")
            assert taken == ["due-4", "due-3"]
        advance.rollback()


def test_the_escalation_inbox_shows_the_longest_waiting_first(case: Any) -> None:
    h, db, instance = case
    ids = [f"esc-{n}" for n in range(4)]
    _tasks(db, instance, ids, escalated_to=lambda n: "office_manager",
           escalated_at=lambda n: NOW - timedelta(hours=n), due_at=lambda n: NOW - timedelta(days=1))
    shown = [v.task.id for v in h.engine.escalations(h.user("mo2", ["office_manager"], staff=True))]
    assert shown == ids[::-1]  # escalated 3, 2, 1 and 0 hours ago


def test_a_tasks_escalation_history_is_in_the_order_it_happened(case: Any) -> None:
    """Whatever order the database keeps the audit rows in (an updated row moves to the end of
    the table on PostgreSQL), the history reads first reminder, then escalation."""
    h, db, instance = case
    _tasks(db, instance, ["hist"], escalated_to=lambda n: "office_manager", escalated_at=lambda n: NOW,
           due_at=lambda n: NOW - timedelta(days=1))
    with db.begin() as conn:
        for action in ("escalation_reminder", "task_escalated"):
            conn.execute(text("INSERT INTO audit_events (instance_id, task_id, element_id, actor, action, "
                              "detail, at) VALUES (:i, 'hist', 'assess', 'escalation', :a, '{}', :at)"),
                         {"i": instance, "a": action, "at": NOW})
        conn.execute(text("UPDATE audit_events SET detail = '{\"note\": 1}' "
                          "WHERE task_id = 'hist' AND action = 'escalation_reminder'"))
    view = h.engine.escalation(h.staff, "hist")
    assert [e["action"] for e in view.history] == ["escalation_reminder", "task_escalated"]


def test_eight_managers_taking_over_one_escalation_at_once_get_it_once(case: Any) -> None:
    """The escalated task's row is locked while a step checks it: one manager takes the task
    over, the other seven are told it is no longer escalated, and the history has one take-over."""
    h, db, instance = case
    _tasks(db, instance, ["taken"], escalated_to=lambda n: "office_manager", escalated_at=lambda n: NOW,
           due_at=lambda n: NOW - timedelta(days=1))
    managers = [h.user(f"mo{i}", ["office_manager", "assessor"], staff=True) for i in range(8)]
    barrier = threading.Barrier(8)
    results: list[str] = [""] * 8

    def take(i: int) -> None:
        barrier.wait()
        try:
            results[i] = str(h.engine.escalation_take_over(managers[i], "taken").task.assignee)
        except InvalidInput as exc:
            results[i] = str(exc)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("mo")]
    assert len(winners) == 1 and sum("is not escalated" in r for r in results) == 7, results
    with db.connect() as conn:
        taken = conn.execute(text("SELECT actor FROM audit_events WHERE task_id = 'taken' "
                                  "AND action = 'escalation_taken_over'")).scalars().all()
        assignee = conn.scalar(text("SELECT assignee FROM human_tasks WHERE id = 'taken'"))
    assert taken == winners and assignee == winners[0]


def test_a_take_over_waits_for_a_step_in_progress_and_sees_its_outcome(case: Any) -> None:
    """While another coordinator's step on the task is still open (it holds the task's row and
    has just taken the task), a second take-over waits for it and is then told the task is no
    longer escalated: it never acts on what it read before that step ended."""
    h, db, instance = case
    _tasks(db, instance, ["held"], escalated_to=lambda n: "office_manager", escalated_at=lambda n: NOW,
           due_at=lambda n: NOW - timedelta(days=1))
    second = h.user("mo1", ["office_manager"], staff=True)
    outcome: list[str] = []

    def take() -> None:
        try:
            outcome.append(str(h.engine.escalation_take_over(second, "held").task.assignee))
        except InvalidInput as exc:
            outcome.append(str(exc))

    with db.connect() as first:
        first.begin()
        first.execute(text("SELECT id FROM human_tasks WHERE id = 'held' FOR UPDATE"))
        first.execute(text("UPDATE human_tasks SET escalated_to = NULL, escalated_at = NULL, "
                           "assignee = 'mo0' WHERE id = 'held'"))
        waiting = threading.Thread(target=take)
        waiting.start()
        waiting.join(1.0)
        first.commit()
    waiting.join(20)
    assert len(outcome) == 1 and "is not escalated" in outcome[0], outcome
    with db.connect() as conn:
        assert conn.scalar(text("SELECT assignee FROM human_tasks WHERE id = 'held'")) == "mo0"
