"""Handing a claimed task on: delegation by its holder, and staff assigning many at once.

Delegation is Camunda's "pass it to a colleague": the person holding a task gives it to another
member of the task's group, without staff. A task whose assignee the diagram names (a
candidate's dossier, an assessor's verdict) belongs to that person; they cannot pass it on,
only staff can reassign it, under the same rules as the first assignment.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.engine import assignment, queue
from certflow.engine.dto import TaskView
from certflow.engine.errors import CertflowError, Forbidden, InvalidInput, NotFound
from certflow.store.models import HumanTask, Instance, User
from certflow.i18n import Message, N_

if TYPE_CHECKING:
    from certflow.engine.facade import Actor

MAX_BULK = 500


@dataclass(frozen=True)
class BulkOutcome:
    """One line of a bulk assignment: done, or why not (the others still went through)."""

    task_id: str
    ok: bool
    message: str
    # What the person assigning recognises it by: its title and case number ("" when gone).
    label: str = ""


def delegate(session: Session, entry: HumanTask, actor: "Actor", to: str, now: datetime,
             elements: dict[str, Any]) -> None:
    if entry.assignee != actor.username and not actor.is_staff:
        raise Forbidden(Message(N_("only the person holding task %(task)s (or staff) may delegate it"), task=entry.id))
    if entry.assignee != actor.username:
        queue.may_hand_over(entry, actor)
    if not actor.is_staff and (elements.get(entry.element_id) or {}).get("assignee"):
        raise Forbidden(Message(N_("task %(task)s is assigned to you by the process; ask the office to reassign it"),
                                task=entry.id))
    if to == entry.assignee:
        raise InvalidInput(Message(N_("task %(task)s is already with %(who)s"), task=entry.id, who=to), field="assignee")
    user = session.get(User, to)
    if user is None:
        raise NotFound(Message(N_("no user '%(user)s'"), user=to), field="assignee")
    if entry.candidate_group not in (user.groups or []):
        raise InvalidInput(Message(N_("%(user)s is not in group '%(group)s'"), user=to, group=entry.candidate_group),
                           field="assignee")
    entry.assignee, entry.claimed_at = to, now


class HandoverMixin:
    """The facade's delegate and bulk-assign (mixed into certflow.engine.facade.Engine)."""

    if TYPE_CHECKING:  # provided by the facade
        def definition(self, session: Session, definition_id: int) -> Any: ...

        def assign(self, actor: "Actor", task_id: str, assignee: str) -> TaskView: ...

        def _queue_op(self, actor: "Actor", task_id: str, action: str, op: Any) -> TaskView: ...

        def session(self) -> AbstractContextManager[Session]: ...

    def delegate(self, actor: "Actor", task_id: str, to: str) -> TaskView:
        """The holder passes the task to a colleague in its group."""
        def op(session: Session, entry: HumanTask, who: "Actor", now: datetime) -> None:
            definition_id = session.scalar(
                select(Instance.definition_id).where(Instance.id == entry.instance_id))
            elements = self.definition(session, definition_id).elements if definition_id else {}
            delegate(session, entry, who, to, now, elements)
            assignment.may_hold(self, session, entry, to)  # type: ignore[arg-type]  # the facade; staff passing on a personal task
        return self._queue_op(actor, task_id, "delegated", op)

    def assign_many(self, actor: "Actor", task_ids: list[str], assignee: str) -> list[BulkOutcome]:
        """Staff assign several tasks to one person; each in its own transaction, so one refusal
        (a task completed meanwhile, a group the person is not in) leaves the others assigned."""
        if not actor.is_staff:
            raise Forbidden(Message(N_("only staff may assign tasks")))
        outcomes = []
        for task_id in check_bulk(task_ids):
            try:
                view = self.assign(actor, task_id, assignee)
                outcomes.append(BulkOutcome(task_id, True, Message(N_("assigned to %(who)s"), who=assignee),
                                            f"{view.title} ({view.business_key})"))
            except CertflowError as exc:
                outcomes.append(BulkOutcome(task_id, False, exc.message, self._label(task_id)))
        return outcomes

    def _label(self, task_id: str) -> str:
        with self.session() as session:
            row = session.execute(select(HumanTask.title, HumanTask.business_key)
                                  .where(HumanTask.id == task_id)).first()
        return f"{row.title} ({row.business_key})" if row else ""


def check_bulk(task_ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(t for t in task_ids if t))
    if not unique:
        raise InvalidInput(Message(N_("choose at least one task")), field="task_ids")
    if len(unique) > MAX_BULK:
        raise InvalidInput(Message(N_("at most %(n)s tasks at once"), n=MAX_BULK), field="task_ids")
    return unique
