"""The human-task queue: inbox queries and claim/unclaim/assign rules.

These read and write ``human_tasks`` only (claims are not engine state); completing a task
is an advance and lives in the facade.
"""

from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, bindparam, or_, select
from sqlalchemy.orm import Session

from certflow.engine import elements as el
from certflow.engine import inbox as inboxq
from certflow.engine.dto import InboxPage, TaskView
from certflow.engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from certflow.engine.projections import table_of
from certflow.engine.runtime import InstanceOf
from certflow.store.models import HumanTask, User
from certflow.engine.inbox_filters import InboxFilter as Criteria, narrowing
from certflow.i18n import Message, N_
from certflow.roles import sees_case_data

if TYPE_CHECKING:
    from certflow.engine.facade import Actor
    from certflow.engine.runtime import Runtime


_GET = select(HumanTask).where(HumanTask.id == bindparam("task_id"))
_GET_LOCKED = _GET.with_for_update()


def instance_of(task_id: str) -> InstanceOf:
    """The instance of an open task, for the lock of the advance that completes it (the lock
    statement finds it; the entry itself is read under that lock: ``row``)."""
    return InstanceOf(table_of(HumanTask), task_id, NotFound(
        Message(N_("no open task '%(task)s' (it may have been completed or cancelled)"), task=task_id)))


_ROW = select(HumanTask.__table__).where(HumanTask.__table__.c.id == bindparam("task_id"))


def row(session: Session, task_id: str) -> Row[Any]:
    """An open task's queue entry as a plain row, for an advance that reads it under its
    instance's lock and never writes it (the save's projection does): no ORM object to build."""
    entry = session.connection().execute(_ROW, {"task_id": task_id}).one_or_none()
    if entry is None:
        raise NotFound(Message(N_("no open task '%(task)s' (it may have been completed or cancelled)"), task=task_id))
    return entry


def get(session: Session, task_id: str, lock: bool = False) -> HumanTask:
    entry = session.execute(_GET_LOCKED if lock else _GET, {"task_id": task_id}).scalar_one_or_none()
    if entry is None:
        raise NotFound(Message(N_("no open task '%(task)s' (it may have been completed or cancelled)"), task=task_id))
    return entry


def view(entry: Any, forms: dict[str, Any], now: datetime,
         elements: dict[str, Any] | None = None) -> TaskView:
    """A ``HumanTask``, or a row of its columns, as the facade shows it, with the form and
    the English name its version's ``forms`` and ``elements`` give it."""
    return TaskView(
        id=entry.id, instance_id=entry.instance_id, process_id=entry.process_id,
        business_key=entry.business_key, element_id=entry.element_id, title=entry.title,
        candidate_group=entry.candidate_group, assignee=entry.assignee, form=entry.form,
        form_schema=forms.get(entry.form or ""), priority=entry.priority, due_at=entry.due_at,
        created_at=entry.created_at, overdue=entry.due_at is not None and entry.due_at < now,
        context=entry.context or {}, escalation_level=entry.escalation_level or 0,
        next_escalation_at=entry.next_escalation_at, escalated_to=entry.escalated_to,
        escalated_at=entry.escalated_at,
        title_en=((elements or {}).get(entry.element_id) or {}).get("name_en"),
    )


def records(rows: Sequence[Row[Any]]) -> list[SimpleNamespace]:
    """``rows`` as plain objects with the same attributes, for ``view``. A SQLAlchemy ``Row``
    answers ``row.name`` only after Python's own lookup has failed with an AttributeError:
    about 1.5 µs a read, 25 times reading it by position, and a view reads 17 of them (a
    quarter of the inbox's CPU for a page of 50, more than building the views)."""
    if not rows:
        return []
    fields = rows[0]._fields
    return [SimpleNamespace(**dict(zip(fields, row))) for row in rows]


def inbox(session: Session, runtime: "Runtime", actor: "Actor", process_id: str | None,
          group: str | None, overdue: bool | None, limit: int = inboxq.PAGE_SIZE,
          after: str | None = None, criteria: Criteria | None = None) -> InboxPage:
    """Mine, plus unassigned in my groups; staff may ask for any group. Due first, a page at
    a time (see certflow.engine.inbox for the order and the indexes behind it);
    ``criteria`` (the inbox page's filters) narrow it."""
    now = runtime.now()
    criteria = criteria or Criteria()
    rows, next_cursor = inboxq.page(session, sources(actor, group, criteria.scope),
                                    narrowing(criteria, process_id, overdue, now), now, limit, after)
    entries = records(rows)
    # Definitions are immutable and cached by id: a deploy is a new id, so a row always shows
    # the forms of the version its instance runs (read in the same statement as the row).
    definitions = [runtime.definition(session, e.definition_id) for e in entries]
    return InboxPage([view(e, d.forms, now, d.elements) for e, d in zip(entries, definitions)],
                     next_cursor)


def sources(actor: "Actor", group: str | None, scope: str = "all") -> list[inboxq.Source]:
    """Whose tasks the inbox shows, each an index-served source. A group's whole queue, its
    members' claimed and personal tasks included, for the staff who see case data; for a member of the group who is
    not staff, its unassigned tasks and their own (as ``may_see`` lets them open: a mentor
    does not read another mentor's candidates' tasks, a candidate another candidate's);
    otherwise the actor's own tasks and their groups' unassigned ones. The scope picks
    sources rather than adding a condition: "mine" over the unassigned index would read all
    of it to find nothing."""
    if group and (sees_case_data(actor) or group in actor.groups):
        if scope == "mine":
            return [inboxq.Source(group=group, assignee=actor.username)]
        if sees_case_data(actor) or scope == "unassigned":
            return [inboxq.Source(group=group, unassigned=scope == "unassigned")]
        return [inboxq.Source(group=group, unassigned=True), inboxq.Source(group=group, assignee=actor.username)]
    found = [] if scope == "unassigned" else [inboxq.Source(assignee=actor.username)]
    if scope != "mine":
        found += [inboxq.Source(group=g, unassigned=True) for g in dict.fromkeys(actor.groups)]
    return found


_HUMAN = HumanTask.__table__
_MINE = select(_HUMAN).where(_HUMAN.c.instance_id == bindparam("instance_id"), or_(
    _HUMAN.c.assignee == bindparam("username"),
    _HUMAN.c.assignee.is_(None) & _HUMAN.c.candidate_group.in_(bindparam("groups", expanding=True)),
))


def mine(session: Session, actor: "Actor", instance_id: str, forms: dict[str, Any], now: datetime,
         elements: dict[str, Any] | None = None) -> list[TaskView]:
    """What in this instance the actor can pick up next."""
    rows = session.connection().execute(_MINE, {
        "instance_id": instance_id, "username": actor.username, "groups": list(actor.groups or ("",))}).all()
    return [view(e, forms, now, elements) for e in records(rows)]


def mine_of(entries: list[dict[str, Any]], actor: "Actor", forms: dict[str, Any], now: datetime,
            elements: dict[str, Any] | None = None) -> list[TaskView]:
    """``mine`` of an instance whose entries are known without a read: the rows its save
    inserted (``Projected.queue``), picked by the same rule as ``_MINE``."""
    groups = actor.groups or ("",)
    return [view(inserted(e), forms, now, elements) for e in entries
            if e["assignee"] == actor.username or (e["assignee"] is None and e["candidate_group"] in groups)]


_COLUMNS = tuple(c.key for c in _HUMAN.columns)


def inserted(row: dict[str, Any]) -> Any:
    """A queue entry the projection inserted (its column values), as a read of the table
    would give it back: every column, the context through JSON (tuples become lists)."""
    values: dict[str, Any] = dict.fromkeys(_COLUMNS)
    values.update(row)
    values["context"] = json.loads(json.dumps(values["context"]))
    return SimpleNamespace(**values)


def may_see(entry: HumanTask, actor: "Actor") -> None:
    if sees_case_data(actor) or entry.assignee == actor.username:
        return
    if entry.assignee is None and entry.candidate_group in actor.groups:
        return
    raise Forbidden(Message(N_("task %(task)s is not yours to see"), task=entry.id))


def may_hand_over(entry: HumanTask, actor: "Actor") -> None:
    """Assigning, releasing or passing on someone else's task: staff who see case data, or
    staff of the task's own group. Not a process owner or certifier outside it: they may not
    see the task (``may_see``), and the answer to handing it over is the task with its case
    data; nor is handing the office's or a mentor's work around theirs to do."""
    if not (actor.is_staff and (sees_case_data(actor) or entry.candidate_group in actor.groups)):
        raise Forbidden(Message(N_("task %(task)s is not yours to see"), task=entry.id))


def may_complete(entry: HumanTask | Row[Any], actor: "Actor") -> None:
    # Outsiders first: "claimed by X" would tell them the task exists and who works on it.
    if entry.assignee != actor.username and entry.candidate_group not in actor.groups and not actor.is_staff:
        raise Forbidden(Message(N_("task %(task)s belongs to group '%(group)s', which you are not in"),
                                task=entry.id, group=entry.candidate_group))
    if entry.assignee is not None and entry.assignee != actor.username:
        raise Conflict(Message(N_("task %(task)s is claimed by %(who)s"), task=entry.id, who=entry.assignee))
    if entry.assignee is None and entry.candidate_group not in actor.groups:
        raise Forbidden(Message(N_("task %(task)s belongs to group '%(group)s', which you are not in"),
                                task=entry.id, group=entry.candidate_group))


def claim(session: Session, entry: HumanTask, actor: "Actor", now: datetime) -> None:
    if entry.candidate_group not in actor.groups and entry.assignee != actor.username:
        raise Forbidden(Message(N_("task %(task)s belongs to group '%(group)s', which you are not in"),
                                task=entry.id, group=entry.candidate_group))
    if entry.assignee == actor.username:
        raise Conflict(Message(N_("you already claimed task %(task)s"), task=entry.id))
    if entry.assignee is not None:
        raise Conflict(Message(N_("task %(task)s is already claimed by %(who)s"), task=entry.id, who=entry.assignee))
    entry.assignee, entry.claimed_at = actor.username, now


def unclaim(session: Session, entry: HumanTask, actor: "Actor", now: datetime) -> None:
    if entry.assignee is None:
        raise Conflict(Message(N_("task %(task)s is not claimed"), task=entry.id))
    if entry.assignee != actor.username and not actor.is_staff:
        raise Forbidden(Message(N_("task %(task)s is claimed by %(who)s; only they or staff may release it"),
                                task=entry.id, who=entry.assignee))
    if entry.assignee != actor.username:
        may_hand_over(entry, actor)
    entry.assignee, entry.claimed_at = None, None


def assign(session: Session, entry: HumanTask, actor: "Actor", assignee: str, now: datetime) -> None:
    if not actor.is_staff:
        raise Forbidden(Message(N_("only staff may assign tasks")))
    may_hand_over(entry, actor)
    user = session.get(User, assignee)
    if user is None:
        raise NotFound(Message(N_("no user '%(user)s'"), user=assignee), field="assignee")
    if entry.candidate_group not in (user.groups or []):
        raise InvalidInput(Message(N_("%(user)s is not in group '%(group)s'"), user=assignee,
                                   group=entry.candidate_group), field="assignee")
    entry.assignee, entry.claimed_at = assignee, now


def correlation_variable(task_spec: Any) -> str | None:
    return el.properties(task_spec).get("correlation")
