"""Drafts of task forms (certflow.services.task_drafts): kept per task and person."""

from __future__ import annotations

import pytest


def test_a_draft_saved_twice_at_once_keeps_the_last(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A double click on "Save draft": the second request finds no draft yet and inserts too.
    It then updates the first one's row instead of failing."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from certflow.bootstrap import create_schema
    from certflow.services import task_drafts
    from certflow.store.db import session_scope

    create_schema(sqlite_url)
    now = datetime(2026, 12, 2, tzinfo=UTC)
    with session_scope() as s:
        task_drafts.save(s, "cas", "t1", {"knowledge": "first"}, now)
    real_get = Session.get
    calls = []

    def late(self: Session, *args: object, **kw: object) -> object:  # the first look misses the row
        calls.append(1)
        return None if len(calls) == 1 else real_get(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Session, "get", late)
    with session_scope() as s:
        task_drafts.save(s, "cas", "t1", {"knowledge": "second"}, now)
    monkeypatch.setattr(Session, "get", real_get)
    with session_scope() as s:
        assert task_drafts.load(s, "cas", "t1").data == {"knowledge": "second"}  # type: ignore[union-attr]


def _drafts() -> dict[tuple[str, str], dict[str, object]]:
    from sqlalchemy import select

    from certflow.store.db import session_scope
    from certflow.store.workspace import TaskDraft

    with session_scope() as s:
        return {(d.task_id, d.username): d.data for d in s.scalars(select(TaskDraft))}


def _dossier(world, who: str) -> str:  # type: ignore[no-untyped-def]
    [task] = [t for t in world.engine.inbox(world.people[who]) if t.element_id == "write_dossier"]
    return str(task.id)


def test_a_draft_goes_with_its_task_however_the_task_leaves(world) -> None:  # type: ignore[no-untyped-def]
    """A draft of a task that left the queue without the form's 'Send' (the case cancelled,
    the task completed through the API) stayed for good: nobody could open or discard it, and
    it held what the candidate had typed for weeks. It goes with its task now; other tasks'
    drafts stay."""
    from tests.services.conftest import to_dossier, tx
    from certflow.services import task_drafts

    cas_case = to_dossier(world, "cas")
    to_dossier(world, "bea", mentor="max")
    cas, bea = _dossier(world, "cas"), _dossier(world, "bea")
    now = world.engine.now()
    tx(task_drafts.save, "cas", cas, {"knowledge": "dertig uur werk"}, now)
    tx(task_drafts.save, "bea", bea, {"knowledge": "half af"}, now)
    world.engine.cancel(world.people["olga"], cas_case, "ingetrokken")
    assert _drafts() == {(bea, "bea"): {"knowledge": "half af"}}
    world.engine.complete(world.people["bea"], bea,  # as the API does: not the page's 'Send'
                          {"knowledge": "k", "tasks": "t", "competences": "c", "hours_spent": 30})
    assert _drafts() == {}
