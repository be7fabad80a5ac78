"""Drafts of task forms: what someone typed and kept without sending it.

A candidate writes the dossier of a first certification over weeks (30 to 40 hours); the
form had only "Send". A draft is the form's values as typed, unchecked (the checks run when it
is sent), kept per task and person, and read back into the form when they return. The caller
has checked that the task is theirs to see (the engine's ``task``); a draft is keyed by the
username too, so nobody reads another's. Sending the task discards it, and a task that leaves
the queue any other way takes its drafts with it (``certflow.engine.projections``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certflow.errors import InvalidInput
from certflow.i18n import Message, N_
from certflow.store.workspace import TaskDraft

MAX_CHARS = 1_000_000  # as JSON: far above any form's fields, far below what hurts a row


def save(session: Session, username: str, task_id: str, data: dict[str, Any], now: datetime) -> None:
    if len(json.dumps(data)) > MAX_CHARS:
        raise InvalidInput(Message(N_("the draft is larger than %(n)s characters"), n=f"{MAX_CHARS:,}"))
    draft = session.get(TaskDraft, (task_id, username))
    if draft is None:
        try:
            with session.begin_nested():  # a double click: the other request may insert it first
                session.add(TaskDraft(task_id=task_id, username=username, data=data, saved_at=now))
            return
        except IntegrityError:
            draft = session.get(TaskDraft, (task_id, username), populate_existing=True)
            assert draft is not None  # the other request's row
    draft.data, draft.saved_at = data, now


def load(session: Session, username: str, task_id: str) -> TaskDraft | None:
    draft = session.get(TaskDraft, (task_id, username))
    if draft is not None:
        session.expunge(draft)
    return draft


def discard(session: Session, username: str, task_id: str) -> None:
    session.execute(delete(TaskDraft).where(TaskDraft.task_id == task_id, TaskDraft.username == username))
