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
