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
offset. Filters are conditions added to every branch (``InboxFilter``).

The branches read only the sort key (an index-only scan each); the page's rows, and the
definition each instance runs, are read after the merge, for the page only. Building and
keying that statement costs more than PostgreSQL's work for it, so it is built once per
shape of request (which sources, filters and cursor), its values bound as parameters.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, literal_column, or_, select, union_all
from sqlalchemy.orm import Session

from certflow.engine.errors import InvalidInput
from certflow.store.models import HumanTask, Instance
from certflow.i18n import Message, N_

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_LATEST = datetime.max.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Source:
    """Tasks one index serves in queue order: a group's (``group``), someone's (``assignee``),
    nobody's yet (``unassigned``), or a combination (a group's unassigned work)."""

    group: str | None = None
    assignee: str | None = None
    unassigned: bool = False


@dataclass(frozen=True)
class InboxFilter:
    """What narrows the inbox besides whose it is; empty fields mean "any". Each is a
    condition on every branch; ``candidate`` is a business key or an instance's subject."""

    process_id: str | None = None
    overdue: bool | None = None
    element_id: str | None = None
    due_before: datetime | None = None
    candidate: str | None = None


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


# What the branches read: the queue-order key, all in each index, so a branch reads its
# index only; the rows of the page itself are read once, after the merge.
_KEY = (HumanTask.id, HumanTask.due_at, HumanTask.priority, HumanTask.created_at)
_ROW = tuple(c for c in HumanTask.__table__.c if c.key != "claimed_at")


def page(session: Session, sources: list[Source], filters: InboxFilter, now: datetime,
         limit: int = PAGE_SIZE, after: str | None = None) -> tuple[list[Row[Any]], str | None]:
    """One page of the tasks of any of ``sources`` that pass ``filters``, in queue order, as
    rows with ``HumanTask``'s columns and the instance's ``definition_id``; with the cursor of
    the next page, or None on the last. One statement, built once per shape of request."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(Message(N_("a page holds 1 to %(n)s tasks"), n=MAX_PAGE_SIZE), field="limit")
    if not sources:
        return [], None
    cursor = Cursor.decode(after) if after else None
    position = None if cursor is None else "undated" if cursor.due_at is None else "dated"
    shape = (tuple((s.group is not None, s.assignee is not None, s.unassigned) for s in sources),
             filters.overdue, filters.process_id is not None, filters.element_id is not None,
             filters.due_before is not None, filters.candidate is not None, position, limit)
    statement = _statement(*shape)
    if statement is None:
        return [], None
    params: dict[str, Any] = {"now": now, "process_id": filters.process_id, "element_id": filters.element_id,
                              "due_before": filters.due_before, "candidate": filters.candidate}
    for n, source in enumerate(sources):
        params[f"group_{n}"], params[f"assignee_{n}"] = source.group, source.assignee
    if cursor is not None:
        params.update(after_due=cursor.due_at, after_priority=cursor.priority,
                      after_created=cursor.created_at, after_id=cursor.id)
    rows = list(session.connection().execute(statement, params).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, Cursor.of(rows[-1]).encode() if more else None


@lru_cache(maxsize=512)
def _statement(sources: tuple[tuple[bool, bool, bool], ...], overdue: bool | None, process: bool, element: bool,
               due_before: bool, candidate: bool, position: str | None, limit: int) -> Select[Any] | None:
    """The statement for one shape of request, its values left as bound parameters (building
    and keying it cost more than the database's work). The limit is written into the SQL: a
    prepared statement's generic plan cannot tell a page of 51 from a scan of the queue."""
    common: list[ColumnElement[bool]] = []
    if process:
        common.append(HumanTask.process_id == bindparam("process_id"))
    if element:
        common.append(HumanTask.element_id == bindparam("element_id"))
    if due_before:
        common.append(HumanTask.due_at <= bindparam("due_before", type_=HumanTask.due_at.type))
    if candidate:
        # A task's business key is its instance's: on ``instances`` both are indexed.
        common.append(HumanTask.instance_id.in_(select(Instance.id).where(or_(
            Instance.business_key == bindparam("candidate"), Instance.subject == bindparam("candidate")))))
    size: ColumnElement[Any] = literal_column(str(limit + 1))
    wheres = []
    for n, (group, assignee, unassigned) in enumerate(sources):
        source: list[ColumnElement[bool]] = []
        if group:
            source.append(HumanTask.candidate_group == bindparam(f"group_{n}"))
        if unassigned:
            source.append(HumanTask.assignee.is_(None))
        elif assignee:
            source.append(HumanTask.assignee == bindparam(f"assignee_{n}"))
        wheres.append(source)
    halves = [w for w in (_branch(dated, overdue, position, due_before) for dated in (True, False)) if w is not None]
    if not halves:
        return None
    if candidate:
        # A candidate has a handful of tasks: one query over all sources, which the database
        # answers from the candidate's instances (no index gives this order, so it does not
        # try to walk one to find them).
        top = select(*_KEY).where(or_(*(and_(*w) for w in wheres)), *common, or_(*(and_(*h) for h in halves))) \
            .order_by(*_queue_order(HumanTask)).limit(size).subquery()
    else:
        branches = [select(*_KEY).where(*w, *common, *half).order_by(
            HumanTask.due_at, HumanTask.priority.desc(), HumanTask.created_at, HumanTask.id,
        ).limit(size).subquery() for w in wheres for half in halves]
        union = union_all(*(select(b) for b in branches)).subquery()
        top = select(union).order_by(*_queue_order(union.c)).limit(size).subquery()
    return (select(*_ROW, Instance.definition_id)
            .join_from(top, HumanTask, HumanTask.id == top.c.id)
            .join(Instance, Instance.id == HumanTask.instance_id)
            .order_by(*_queue_order(top.c)))


def _queue_order(c: Any) -> list[ColumnElement[Any]]:
    """Queue order on the key columns of a subquery (undated last on both databases)."""
    return [c.due_at.is_(None), c.due_at, c.priority.desc(), c.created_at, c.id]


def _branch(dated: bool, overdue: bool | None, position: str | None,
            due_before: bool) -> list[ColumnElement[bool]] | None:
    """The conditions of the dated or undated half of a source, after a cursor at ``position``
    (None: the first page); None when that half holds nothing (it is then not read to the
    end to find nothing)."""
    if not dated:
        if overdue or due_before:
            return None  # an undated task is never overdue, nor due within a window
        where: list[ColumnElement[bool]] = [HumanTask.due_at.is_(None)]
        if position == "undated":
            where += [HumanTask.priority <= _AFTER_PRIORITY, _after_priority()]
        return where
    if position == "undated":
        return None  # the previous page already reached the undated tasks
    where = [HumanTask.due_at.is_not(None)]
    if overdue is True:
        where.append(HumanTask.due_at < _NOW)
    elif overdue is False:
        where.append(HumanTask.due_at >= _NOW)
    if position == "dated":
        # The first condition bounds the index range; the second is the exact keyset.
        where += [HumanTask.due_at >= _AFTER_DUE, or_(
            HumanTask.due_at > _AFTER_DUE, and_(HumanTask.due_at == _AFTER_DUE, _after_priority()))]
    return where


_NOW = bindparam("now", type_=HumanTask.due_at.type)
_AFTER_DUE = bindparam("after_due", type_=HumanTask.due_at.type)
_AFTER_PRIORITY = bindparam("after_priority", type_=HumanTask.priority.type)
_AFTER_CREATED = bindparam("after_created", type_=HumanTask.created_at.type)
_AFTER_ID = bindparam("after_id", type_=HumanTask.id.type)


def _after_priority() -> ColumnElement[bool]:
    """After the cursor among tasks with its due date: lower priority, or equal and later."""
    return or_(
        HumanTask.priority < _AFTER_PRIORITY,
        and_(HumanTask.priority == _AFTER_PRIORITY, or_(
            HumanTask.created_at > _AFTER_CREATED,
            and_(HumanTask.created_at == _AFTER_CREATED, HumanTask.id > _AFTER_ID))))
