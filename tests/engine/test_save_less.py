"""What an advance no longer reads or writes because the save already knows it (issue 12,
"save less"), and that the answers stay those the tables give.

A save knows the queue entries it wrote: when it wrote every entry of its instance (none was
kept from an earlier save, whose claim may have changed since), a completion's "what is mine
next" and a start's view are built from them, not read back. A save that closes no projected
task deletes nothing. ``CERTFLOW_VERIFY_STATE`` (on in every test) compares each such answer
with a read; these tests switch it off where they count statements, and show it bites."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, select

from certflow.engine.errors import Conflict, NotFound
from certflow.engine.messaging import emit
from certflow.store.db import session_scope
from certflow.store.models import HumanTask, Instance, Message
from tests.engine.test_queue_rules import QUEUE_DIR, ids
from tests.engine.test_runtime import flow, start  # noqa: F401  (the fixture)
from tests.engine.test_shared_clock import moved_by_another_process
from tests.support import FLOW_DIR, Harness, statements


@pytest.fixture
def queue(harness: Harness) -> Harness:
    harness.engine.deploy(harness.staff, QUEUE_DIR)
    return harness


def _reads_of(table: str, seen: list[str]) -> list[str]:
    """Reads of ``table``'s rows (not a lock statement that finds an instance through it)."""
    return [s for s in seen if s.startswith(f"SELECT {table}.")]


def test_a_start_answers_with_its_tasks_and_waits_without_reading_them(queue: Harness,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "0")
    with statements() as seen:
        view = queue.engine.start(queue.staff, "queue", "Q1", {})
    assert not _reads_of("human_tasks", seen) and not _reads_of("subscriptions", seen)
    read = queue.engine.instance(queue.staff, view.id)  # read from the tables
    assert sorted(view.open_tasks, key=lambda t: t.id) == sorted(read.open_tasks, key=lambda t: t.id)
    assert sorted(ids(view.open_tasks)) == ["later", "mentoring", "soon", "undated_high", "undated_low"]
    assert view.waiting_for == read.waiting_for == []


def test_a_completion_that_leaves_only_new_work_answers_from_the_save(queue: Harness,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """While other tasks stay open the answer is read (a colleague may have claimed one);
    once the completion leaves only the task it opened, that task is the answer, unread."""
    instance_id = queue.engine.start(queue.staff, "queue", "Q1", {}).id
    clerk = queue.user("clerk", ["office", "mentor"])
    tasks = {t.element_id: t.id for t in queue.engine.inbox(clerk) if t.instance_id == instance_id}
    for element in ("later", "undated_low", "undated_high", "mentoring"):
        queue.engine.complete(clerk, tasks[element], {"ok": True})
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "0")
    with statements() as seen:
        done = queue.engine.complete(clerk, tasks["soon"], {"ok": True})
    assert ids(done.next_tasks) == ["followup"]
    assert len(_reads_of("human_tasks", seen)) == 1  # the completed task's entry, under the lock
    [followup] = done.next_tasks
    assert followup == queue.engine.task(clerk, followup.id)  # what a read of it gives
    assert ids(queue.engine.complete(clerk, followup.id, {"ok": True}).next_tasks) == []


def test_a_save_that_closes_no_task_deletes_no_entry(flow: Harness,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    start(flow)
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "0")
    with statements() as seen:
        flow.run_jobs()  # make_ref done: review opens, nothing closes
    assert not [s for s in seen if s.startswith("DELETE FROM human_tasks")]
    assert [t.element_id for t in flow.engine.inbox(flow.staff)] == ["review"]


def test_an_entry_that_is_not_projected_is_caught_by_the_check(flow: Harness,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The skipped delete trusts that an instance's entries are those its last save projected
    (only the projection inserts and deletes them). A row put there behind its back breaks
    that, and the check says so."""
    instance_id = start(flow)
    now = datetime.now(timezone.utc)
    with session_scope() as s:
        instance = s.get(Instance, instance_id)
        assert instance is not None
        s.execute(insert(HumanTask), [dict(
            id="stray", instance_id=instance_id, process_id="flow", business_key=instance.business_key,
            element_id="review", title="Stray", candidate_group="office", priority=50, created_at=now, context={})])
    with pytest.raises(AssertionError, match="differ from the projected"):
        flow.run_jobs()
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "0")
    flow.run_jobs()  # unchecked, the stray row stays: the check is what guards the shortcut
    with session_scope() as s:
        assert s.get(HumanTask, "stray") is not None


def test_a_start_and_a_drain_see_the_clock_another_process_moved(flow: Harness) -> None:  # noqa: F811
    """A start reads the offset with its first lookup, a drain with its pick of the next
    message: neither runs a read of its own, and neither uses a stale offset."""
    moved_by_another_process(timedelta(days=2))
    instance_id = start(flow)
    real = datetime.now(timezone.utc)
    with session_scope() as s:
        created = s.scalar(select(Instance.created_at).where(Instance.id == instance_id))
        emit(s, "nobody", {"x": 1}, flow.engine.now())
    assert created is not None and created > real + timedelta(days=2, minutes=-1)
    moved_by_another_process(timedelta(days=3))
    flow.engine.drain_messages()
    with session_scope() as s:
        message = s.scalars(select(Message).where(Message.name == "nobody")).one()
    assert message.status == "unrouted" and message.handled_at is not None
    handled = message.handled_at if message.handled_at.tzinfo else message.handled_at.replace(tzinfo=timezone.utc)
    assert handled > real + timedelta(days=5, minutes=-1)


def test_the_instance_view_sees_the_clock_another_process_moved(flow: Harness) -> None:  # noqa: F811
    instance_id = start(flow)
    flow.run_jobs()
    assert not any(t.overdue for t in flow.engine.instance(flow.staff, instance_id).open_tasks)
    moved_by_another_process(timedelta(days=11))  # the review was due in 10 days
    assert all(t.overdue for t in flow.engine.instance(flow.staff, instance_id).open_tasks)
    with pytest.raises(NotFound):
        flow.engine.instance(flow.staff, "no-such-instance")


@pytest.fixture
def both(any_db: str) -> Harness:
    """The flow process on SQLite and on PostgreSQL."""
    from certflow.bootstrap import build_engine

    harness = Harness(build_engine())
    harness.engine.publisher = harness.published.extend
    harness.engine.deploy(harness.staff, FLOW_DIR)
    return harness


def test_a_completion_answers_the_same_on_either_database(both: Harness) -> None:
    """A claim by someone else is seen by the completion, the answer (what is mine next) is
    built from the save's rows or read, as checked, and a completed task is gone."""
    start(both)
    both.run_jobs()
    [task] = [t for t in both.engine.inbox(both.staff) if t.element_id == "review"]
    bob = both.user("bob", ["office"])
    both.engine.claim(bob, task.id)
    clerk = both.user("clerk", ["office"])
    with pytest.raises(Conflict, match="claimed by bob"):
        both.engine.complete(clerk, task.id, {"approved": True})
    done = both.engine.complete(bob, task.id, {"approved": True})
    assert done.instance_status == "running" and done.next_tasks == []
    with pytest.raises(NotFound, match="no open task"):
        both.engine.complete(bob, task.id, {"approved": True})


def test_an_unrouted_message_is_settled_by_its_drain_on_either_database(both: Harness) -> None:
    """The drain settles a message nobody takes under the lock of its pick (SKIP LOCKED on
    PostgreSQL), with no claim of its own, once."""
    with session_scope() as s:
        emit(s, "nobody", {"x": 1}, both.engine.now())
    assert both.engine.drain_messages() == 1
    with session_scope() as s:
        message = s.scalars(select(Message).where(Message.name == "nobody")).one()
    assert message.status == "unrouted" and "nobody waits" in (message.outcome or "")
    assert both.engine.drain_messages() == 0


def test_a_message_is_looked_up_and_delivered_to_its_waiter_in_one_transaction(
        flow: Harness) -> None:  # noqa: F811
    """The lookup of who waits shares its transaction with the (first) delivery."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    instance_id = start(flow)
    flow.run_jobs()
    [task] = [t for t in flow.engine.inbox(flow.staff) if t.element_id == "review"]
    flow.engine.complete(flow.staff, task.id, {"approved": True})
    ref = flow.engine.instance(flow.staff, instance_id).data["ref"]
    commits: list[object] = []

    def committed(session: Session) -> None:
        commits.append(session)

    event.listen(Session, "after_commit", committed)
    try:
        assert flow.engine.deliver_message(flow.staff, "paid", {"amount": 3}, {"ref": ref}) == [instance_id]
    finally:
        event.remove(Session, "after_commit", committed)
    assert len(commits) == 1
    view = flow.engine.instance(flow.staff, instance_id)
    assert view.status == "completed" and view.data["amount"] == 3
    with pytest.raises(NotFound, match="no instance is waiting"):
        flow.engine.deliver_message(flow.staff, "paid", {"amount": 4}, {"ref": ref})


def test_a_started_instance_is_written_with_one_insert_and_never_read_back(flow: Harness,  # noqa: F811
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The new row goes in with a Core INSERT and the object stands for it in the session as
    a flush would leave it: the save's version check holds, and no column is read back."""
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "0")
    with statements() as seen:
        instance_id = start(flow)
    assert len([s for s in seen if s.startswith("INSERT INTO instances")]) == 1
    assert not [s for s in seen if s.startswith("SELECT instances.id, instances.definition_id")]
    with session_scope() as s:
        row = s.get(Instance, instance_id)
        assert row is not None
        assert (row.version, row.has_incident, row.status, row.business_key) == (2, False, "running", "K1")
        assert row.projected is not None and row.state and row.definition_id
    flow.run_jobs()
    assert [t.element_id for t in flow.engine.inbox(flow.staff)] == ["review"]


@pytest.mark.integration
def test_views_of_an_instance_read_one_moment_on_postgresql(pg_url: str) -> None:
    """Another process's commit between the view's read of the instance and of its queue
    entries does not show half: READ COMMITTED would give the row from before and the
    entries from after (a bench saw "waits for the payment" with no invoice number yet)."""
    from sqlalchemy import delete, event

    from certflow.bootstrap import build_engine
    from certflow.store.db import get_engine

    h = Harness(build_engine())
    h.engine.publisher = h.published.extend
    h.engine.deploy(h.staff, FLOW_DIR)
    instance_id = start(h)
    h.run_jobs()
    before = [t.element_id for t in h.engine.instance(h.staff, instance_id).open_tasks]
    assert before == ["review"]
    db = get_engine(pg_url)
    meddled: list[bool] = []

    def commit_meanwhile(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("SELECT human_tasks.") and not meddled:
            meddled.append(True)
            with db.connect() as other:  # another connection of the pool: another process
                other.execute(delete(HumanTask).where(HumanTask.instance_id == instance_id))
                other.commit()

    def meddled_view(read: Any) -> Any:
        meddled.clear()
        event.listen(db, "before_cursor_execute", commit_meanwhile)
        try:
            return read()
        finally:
            event.remove(db, "before_cursor_execute", commit_meanwhile)
            assert meddled, "nothing committed between the reads"
            with db.connect() as conn:  # the entry back, as it was
                conn.execute(insert(HumanTask), saved)
                conn.commit()

    with db.connect() as conn:
        saved = [dict(r._mapping) for r in conn.execute(select(HumanTask.__table__))]
    # The instance's view, the monitor's page of it, and the candidate's "where does my case stand".
    assert [t.element_id for t in meddled_view(lambda: h.engine.instance(h.staff, instance_id)).open_tasks] == before
    detail = meddled_view(lambda: h.engine.monitor_detail(h.staff, instance_id))
    assert [t.element_id for t in detail.open_tasks] == before
    [case] = meddled_view(lambda: h.engine.progress(h.staff))
    assert [s.title for s in case.steps] == [t.title for t in h.engine.instance(h.staff, instance_id).open_tasks]
    with db.connect() as conn:
        conn.execute(delete(HumanTask).where(HumanTask.instance_id == instance_id))
        conn.commit()
    assert h.engine.instance(h.staff, instance_id).open_tasks == []  # a view after the commit sees it


def test_the_inbox_answers_while_an_advance_holds_the_write_lock_on_sqlite(queue: Harness, sqlite_url: str) -> None:
    """On the embedded default a read-only unit of work (the inbox) takes no write lock: it
    reads its snapshot while a worker's advance holds the lock, instead of queueing behind it
    (for up to the 30 s busy timeout). A unit of work that writes still waits its turn."""
    import sqlite3
    import threading

    queue.engine.start(queue.staff, "queue", "Q1", {})
    mine = len(queue.engine.inbox_page(queue.staff).tasks)
    assert mine > 0
    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # an advance in another process, mid-transaction
    writer.execute("DELETE FROM human_tasks")  # not committed: the inbox must not see it
    try:
        answered: list[int] = []
        reader = threading.Thread(target=lambda: answered.append(len(queue.engine.inbox_page(queue.staff).tasks)))
        reader.start()
        reader.join(5)
        assert answered == [mine], "the inbox waited for the writer's lock"
        started: list[str] = []
        blocked = threading.Thread(target=lambda: started.append(
            queue.engine.start(queue.staff, "queue", "Q2", {}).id), daemon=True)
        blocked.start()
        blocked.join(0.5)
        assert started == []  # a start writes: it waits for the lock
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    blocked.join(10)
    assert len(started) == 1 and len(queue.engine.inbox_page(queue.staff).tasks) == 2 * mine
