"""Completing a task from a page: posted fields -> typed JSON -> validated per field ->
completed through the facade. Shared by the inbox and Mijn CMI.

A page can be stale: someone else completed the task, or a timer cancelled it, while the form
was open. Then nothing is changed and the person is told so plainly (``stale``), rather than
shown an error code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from certflow.engine.dto import TaskView
from certflow.engine.errors import CertflowError, Conflict, NotFound
from certflow.i18n import N_
from certflow.clock import CLOCK
from certflow.services import task_drafts
from certflow.services.accounts import Account
from certflow.store.db import session_scope
from certflow.web import schema_forms
from certflow.web.deps import actor_of, get_engine
from certflow.web.pages.deps import form_lists
from certflow.web.text_input import TOO_LARGE, number_path

STALE = N_("Someone else completed or changed this task in the meantime; nothing was saved.")


@dataclass
class Submission:
    task: TaskView | None
    data: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    stale: bool = False
    done: bool = False


async def submit(request: Request, account: Account, task_id: str) -> Submission:
    engine = get_engine()
    try:
        task = engine.task(actor_of(account), task_id)
    except NotFound:
        return Submission(None, stale=True)
    schema = task.form_schema or {"type": "object"}
    data = schema_forms.coerce(schema, await form_lists(request))
    errors = schema_forms.validate(schema, data, account.language)
    # Whatever the form's own bounds: 1e308 was stored as a 309-digit integer.
    errors.update({name: TOO_LARGE for name, value in data.items() if number_path(value) is not None})
    if errors:
        return Submission(task, data, errors)
    try:
        engine.complete(actor_of(account), task_id, data)
    except (NotFound, Conflict):
        return Submission(task, data, stale=True)
    except CertflowError as exc:
        fields = exc.details.get("fields")
        errors = schema_forms.facade_errors(fields if isinstance(fields, dict) else None)
        return Submission(task, data, errors or {schema_forms.FORM_LEVEL: exc.message})
    with session_scope() as session:  # sent: a draft of it is of no more use
        task_drafts.discard(session, account.username, task_id)
    return Submission(task, data, done=True)


async def keep_draft(request: Request, account: Account, task_id: str) -> Submission:
    """The form as typed, kept unsent and unchecked (task_drafts); ``stale`` when the task is
    no longer theirs to see."""
    try:
        task = get_engine().task(actor_of(account), task_id)
    except NotFound:
        return Submission(None, stale=True)
    data = schema_forms.coerce(task.form_schema or {"type": "object"}, await form_lists(request))
    with session_scope() as session:
        task_drafts.save(session, account.username, task_id, data, CLOCK.now())
    return Submission(task, data, done=True)


def draft_of(account: Account, task_id: str) -> tuple[dict[str, Any], Any] | None:
    """The values and time of the person's draft of the task, if they kept one."""
    with session_scope() as session:
        draft = task_drafts.load(session, account.username, task_id)
    return (draft.data, draft.saved_at) if draft is not None else None


def form_of(task: TaskView, account: Account, values: dict[str, Any] | None = None,
            errors: dict[str, str] | None = None) -> dict[str, Any]:
    """What a template needs to draw the task's form."""
    schema = task.form_schema or {"type": "object", "properties": {}}
    return {
        "fields": schema_forms.fields(schema, values or {}, errors or {}, account.language),
        "form_title": schema_forms.pick(schema.get("title"), account.language),
        "form_intro": schema_forms.pick(schema.get("description"), account.language),
        "errors": errors or {},
    }
