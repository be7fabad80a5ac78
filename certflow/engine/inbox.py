"""The inbox query: one page of open tasks in queue order, fast at a million open tasks.

Queue order is due first (earliest due date, undated last), then higher priority, then older,
then id (a total order, so pages never skip or repeat a task). The query is a UNION ALL of
branches, each of which one index serves in exactly that order, so every branch stops after
a page of rows however many tasks are open:

- the actor's own tasks: ``ix_human_tasks_assignee_queue``;
- unassigned tasks of each of the actor's groups: the partial index
  ``ix_human_tasks_unassigned_queue`` (``WHERE assignee IS NULL``);
- a group staff asked for: ``ix_human_tasks_group_queue``.

Each source is split into its dated and undated tasks, because "undated last" is not an order
an index can give on both databases; ``due_at IS NULL`` is an index condition on both.
Paging is by keyset (``after`` is the cursor of the last task of the previous page), never by
offset. Filters are plain conditions added to every branch (``InboxFilter.conditions``), so a
new filter is one more condition, not a new query shape.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, or_, select, union_all
from sqlalchemy.orm import Session

from certflow.engine.errors import InvalidInput
from certflow.store.models import HumanTask
from certflow.i18n import Message, N_

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_LATEST = datetime.max.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class InboxFilter:
    """What narrows the inbox besides whose it is. ``conditions`` are extra SQL conditions on
    ``HumanTask`` (applied to every branch)."""

    process_id: str | None = None
    overdue: bool | None = None
    conditions: tuple[ColumnElement[bool], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Cursor:
    due_at: datetime | None
    priority: int
    created_at: datetime
    id: str

    def encode(self) -> str:
        raw = [self.due_at.isoformat() if self.due_at else None, self.priority,
               self.created_at.isoformat(), self.id]
        return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            due, priority, created, task_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(datetime.fromisoformat(due) if due else None, int(priority),
                       datetime.fromisoformat(created), str(task_id))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(Message(N_("not a valid inbox cursor; use the one the previous page gave")),
                               field="after") from exc

    @classmethod
    def of(cls, entry: Any) -> "Cursor":
        return cls(entry.due_at, entry.priority, entry.created_at, entry.id)


def sort_key(entry: Any) -> tuple[Any, ...]:
    """Queue order, for a ``HumanTask`` or a row of its columns."""
    return (entry.due_at is None, entry.due_at or _LATEST, -entry.priority, entry.created_at, entry.id)


def page(session: Session, sources: list[ColumnElement[bool]], filters: InboxFilter, now: datetime,
         limit: int = PAGE_SIZE, after: str | None = None) -> tuple[list[Row[Any]], str | None]:
    """One page of the tasks matching any of ``sources`` (each an index-served condition) and
    every filter, in queue order, as rows with ``HumanTask``'s columns; with the cursor of the
    next page, or None on the last."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(Message(N_("a page holds 1 to %(n)s tasks"), n=MAX_PAGE_SIZE), field="limit")
    cursor = Cursor.decode(after) if after else None
    common: list[ColumnElement[bool]] = list(filters.conditions)
    if filters.process_id:
        common.append(HumanTask.process_id == filters.process_id)
    branches = []
    for source in sources:
        for dated in (True, False):
            where = _branch(dated, filters.overdue, now, cursor)
            if where is None:
                continue
            branches.append(select(HumanTask).where(source, *common, *where).order_by(
                HumanTask.due_at, HumanTask.priority.desc(), HumanTask.created_at, HumanTask.id,
            ).limit(limit + 1).subquery())
    if not branches:
        return [], None
    # Plain rows, not ORM objects: up to (branches x page) of them are read and most dropped.
    union = union_all(*(select(b) for b in branches)).subquery()
    rows = sorted(session.execute(select(union)).all(), key=sort_key)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, Cursor.of(rows[-1]).encode() if more else None


def _branch(dated: bool, overdue: bool | None, now: datetime, cursor: Cursor | None) -> list[ColumnElement[bool]] | None:
    """The conditions of the dated or undated half of a source; None when it holds nothing."""
    if not dated:
        if overdue:
            return None  # an undated task is never overdue
        where: list[ColumnElement[bool]] = [HumanTask.due_at.is_(None)]
        if cursor is not None and cursor.due_at is None:
            where += [HumanTask.priority <= cursor.priority, _after_priority(cursor)]
        return where
    if cursor is not None and cursor.due_at is None:
        return None  # the previous page already reached the undated tasks
    where = [HumanTask.due_at.is_not(None)]
    if overdue is True:
        where.append(HumanTask.due_at < now)
    elif overdue is False:
        where.append(HumanTask.due_at >= now)
    if cursor is not None:
        # The first condition bounds the index range; the second is the exact keyset.
        where += [HumanTask.due_at >= cursor.due_at, or_(
            HumanTask.due_at > cursor.due_at,
            and_(HumanTask.due_at == cursor.due_at, _after_priority(cursor)))]
    return where


def _after_priority(cursor: Cursor) -> ColumnElement[bool]:
    """After the cursor among tasks with its due date: lower priority, or equal and later."""
    return or_(
        HumanTask.priority < cursor.priority,
        and_(HumanTask.priority == cursor.priority, or_(
            HumanTask.created_at > cursor.created_at,
            and_(HumanTask.created_at == cursor.created_at, HumanTask.id > cursor.id))))
