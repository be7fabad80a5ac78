"""The escalation sweep and the escalation inbox.

The sweep is beat's safety net for every open human task with a due time, whether or not its
diagram draws a timer: it takes the tasks whose next policy step is due (the partial index on
``human_tasks.next_escalation_at`` holds only those), applies one step each (reminder,
escalation, second level), and moves ``next_escalation_at`` on to the next step, all in one
transaction per batch. On PostgreSQL the batch is taken ``FOR UPDATE SKIP LOCKED``, so two
schedulers each take different tasks and no level is applied twice; SQLite serializes writers.
After downtime the steps that were missed are applied once each, oldest first, and every
audit event carries both the planned and the actual time.

Coordinators work the inbox of tasks escalated to their group: reassign, extend the due time
(with a reason) or take the task over, each one step and each audited.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from certflow import workdays
from certflow.engine import assignment, policies, queue
from certflow.engine.dto import EscalationView
from certflow.engine.errors import Forbidden, InvalidInput, NotFound
from certflow.localtime import end_of_day
from certflow.roles import sees_case_data
from certflow.store.models import AuditEvent, HumanTask, Instance, User
from certflow.i18n import Message, N_

if TYPE_CHECKING:
    from certflow.engine.facade import Actor
    from certflow.engine.runtime import Runtime

    _Base = Runtime
else:
    _Base = object

log = logging.getLogger(__name__)
ACTIONS = ("escalation_reminder", "task_escalated", "escalation_reassigned", "escalation_extended",
           "escalation_taken_over")


class EscalationMixin(_Base):
    # Told about every committed batch of steps (the audit rows): the composition root wires
    # the emails to assignees and escalation groups here (certflow.services.notices).
    notify: Callable[[list[dict[str, Any]]], None] | None = None

    # -- the sweep (beat) ------------------------------------------------------------------------
    def sweep_escalations(self, limit: int = 5000, batch: int = 200) -> int:
        """Apply every policy step that is due, in due order; returns how many were applied."""
        applied = 0
        while applied < limit:
            taken, events = self._escalate_batch(batch)
            applied += len(events)
            if events and self.notify is not None:
                try:
                    self.notify(events)
                except Exception:  # a mail server down must not stop the sweep: the steps stand
                    log.exception("escalation notices for %d step(s) failed", len(events))
            if taken == 0:  # every batch moves its tasks' next step past now, so this ends
                break
        return applied

    def _escalate_batch(self, size: int) -> tuple[int, list[dict[str, Any]]]:
        """One transaction: lock the ``size`` tasks whose next step is due first and apply their
        due steps in due order. A task's later step is applied here only if it is not later than
        the last task taken: any task not taken is due no earlier than that (strict due order)."""
        with self.session() as session:
            now = self.now()
            rows = session.execute(due_steps(now, size)).all()
            if not rows:
                return 0, []
            cutoff = rows[-1][0].next_escalation_at if len(rows) == size else now
            cal = workdays.calendar(self.settings.processes_dir)
            heap = [(entry.next_escalation_at, n, entry, definition_id) for n, (entry, definition_id) in enumerate(rows)]
            heapq.heapify(heap)
            events = []
            while heap:
                _, n, entry, definition_id = heapq.heappop(heap)
                event = self._step(session, entry, definition_id, now, cal)
                if event is None:
                    continue
                events.append(event)
                later = entry.next_escalation_at
                if later is not None and later <= now and cutoff is not None and later <= cutoff:
                    heapq.heappush(heap, (later, n, entry, definition_id))
            if events:
                session.execute(insert(AuditEvent), events)
            return len(rows), events

    def _step(self, session: Session, entry: HumanTask, definition_id: int, now: datetime,
              cal: workdays.Calendar) -> dict[str, Any] | None:
        elements = self.definition(session, definition_id).elements
        policy = policies.of(elements, entry.element_id)
        assert entry.due_at is not None  # next_escalation_at is only ever set from a due time
        planned = policies.steps(policy, entry.due_at, cal)
        level = entry.escalation_level
        # Nothing more to do (the default policy lost a step in an upgrade), or re-planned later
        # (a closing day added since): no step now, only the next time.
        if level >= len(planned) or planned[level].at > now:
            entry.next_escalation_at = planned[level].at if level < len(planned) else None
            return None
        step = planned[level]
        detail: dict[str, Any] = {"policy": policy.get("policy"), "step": step.kind, "level": level + 1,
                                  "due_at": _iso(entry.due_at), "planned_at": _iso(step.at),
                                  "assignee": entry.assignee, "group": entry.candidate_group,
                                  "title": entry.title, "business_key": entry.business_key}
        if step.kind == "reminder":
            detail["to"] = entry.assignee or entry.candidate_group
            action = "escalation_reminder"
        else:
            entry.escalated_to, entry.escalated_at = step.to_group, now
            detail["to"] = step.to_group
            if step.kind == "escalation":
                detail["on_escalation"] = self._on_escalation(session, entry, policy, now, elements)
            action = "task_escalated"
        entry.escalation_level = level + 1
        entry.next_escalation_at = planned[level + 1].at if level + 1 < len(planned) else None
        return dict(instance_id=entry.instance_id, task_id=entry.id, element_id=entry.element_id,
                    actor="escalation", action=action, detail=detail, at=now)

    # -- the escalation inbox --------------------------------------------------------------------
    def escalations(self, actor: "Actor", group: str | None = None) -> list[EscalationView]:
        """Tasks escalated to one of my groups, longest waiting first. Another group's only for
        the staff who see case data (``roles.sees_case_data``): an escalated task shows its
        case's personal data, which a process owner or certifier does not see by that role."""
        if group and group not in actor.groups and not sees_case_data(actor):
            raise Forbidden(Message(N_("you are not in group '%(group)s'"), group=group))
        groups = [group] if group else list(actor.groups)
        with self.session() as session:
            entries = session.scalars(select(HumanTask).where(HumanTask.escalated_to.in_(groups or [""]))
                                      .order_by(HumanTask.escalated_at).limit(500)).all()
            return self._escalation_views(session, entries)

    def escalation(self, actor: "Actor", task_id: str) -> EscalationView:
        with self.session() as session:
            entry = queue.get(session, task_id)
            _may_handle(entry, actor)
            return self._escalation_view(session, entry)

    def _escalation_view(self, session: Session, entry: HumanTask) -> EscalationView:
        [view] = self._escalation_views(session, [entry])
        return view

    def _escalation_views(self, session: Session, entries: Sequence[HumanTask]) -> list[EscalationView]:
        """Escalated tasks as the coordinators see them: their escalation history and form,
        read for the whole list at once (not two reads per task: a list holds up to 500)."""
        if not entries:
            return []
        now = self.now()
        instance_ids = sorted({e.instance_id for e in entries})
        history: dict[str, list[Any]] = {e.id: [] for e in entries}
        for row in session.execute(select(AuditEvent.task_id, AuditEvent.at, AuditEvent.actor, AuditEvent.action,
                                          AuditEvent.detail)
                                   .where(AuditEvent.instance_id.in_(instance_ids),  # the indexed column
                                          AuditEvent.task_id.in_(list(history)), AuditEvent.action.in_(ACTIONS))
                                   .order_by(AuditEvent.id)):
            history[row.task_id].append(row)
        versions = dict(session.execute(select(Instance.id, Instance.definition_id)
                                        .where(Instance.id.in_(instance_ids))).tuples().all())
        views = []
        for entry in entries:
            steps = history[entry.id]
            # Why: the due time that passed (not a later extension's), as the last escalation saw it.
            last: dict[str, Any] = next((h.detail for h in reversed(steps) if h.action == "task_escalated"), {})
            why = f"due {last.get('due_at')} passed; policy {last.get('policy')}, level {last.get('level')}"
            definition = self.definition(session, versions[entry.instance_id])  # type: ignore[attr-defined]
            views.append(EscalationView(
                task=queue.view(entry, definition.forms, now, definition.elements),
                escalated_to=entry.escalated_to, escalated_since=entry.escalated_at, why=why,
                level=entry.escalation_level, next_step_at=entry.next_escalation_at,
                history=[{"at": h.at, "actor": h.actor, "action": h.action, "detail": h.detail} for h in steps]))
        return views

    def _on_escalation(self, session: Session, entry: HumanTask, policy: dict[str, Any], now: datetime,
                       elements: dict[str, Any]) -> str:
        """What the policy does to the task's holder. A task the diagram gives to a person (the
        candidate's dossier, an assessor's verdict) is not returned to its group, where the
        other candidates or assessors would see and take it past the rules its assignment was
        held to; a reassignment is held to them (assignment.may_hold)."""
        action = str(policy.get("on_escalation") or "keep")
        personal = assignment.is_personal(elements.get(entry.element_id) or {})
        if action == "return_to_group":
            if personal:
                return f"{action} not applied to a task the process gives to a person; kept"
            entry.assignee, entry.claimed_at = None, None
        elif action.startswith("reassign:"):
            user = session.get(User, action.removeprefix("reassign:"))
            if user is None or entry.candidate_group not in (user.groups or []):
                return f"{action} impossible (no such user in {entry.candidate_group!r}); kept"
            try:
                assignment.may_hold(self, session, entry, user.username)
            except InvalidInput as exc:
                return f"{action} impossible ({exc}); kept"
            entry.assignee, entry.claimed_at = user.username, now
        return action

    def escalation_reassign(self, actor: "Actor", task_id: str, assignee: str, reason: str = "") -> EscalationView:
        def op(session: Session, entry: HumanTask, now: datetime) -> dict[str, Any]:
            user = session.get(User, assignee)
            if user is None:
                raise NotFound(Message(N_("no user '%(user)s'"), user=assignee), field="assignee")
            if entry.candidate_group not in (user.groups or []):
                raise InvalidInput(Message(N_("%(user)s is not in group '%(group)s'"), user=assignee,
                                           group=entry.candidate_group), field="assignee")
            assignment.may_hold(self, session, entry, assignee)
            before, entry.assignee, entry.claimed_at = entry.assignee, assignee, now
            return {"from": before, "to": assignee, "reason": reason}
        return self._resolve(actor, task_id, "escalation_reassigned", op)

    def escalation_take_over(self, actor: "Actor", task_id: str, reason: str = "") -> EscalationView:
        def op(session: Session, entry: HumanTask, now: datetime) -> dict[str, Any]:
            # Only a member of the task's group does its work (a coordinator does not decide a
            # mentor's review, nor a process owner the office's check): as a reassignment.
            if entry.candidate_group not in actor.groups:
                raise InvalidInput(Message(N_("%(user)s is not in group '%(group)s'"), user=actor.username,
                                           group=entry.candidate_group), field="reason")
            # Not a candidate's own task, nor an assessor's verdict against the conflict rules.
            assignment.may_hold(self, session, entry, actor.username)
            before, entry.assignee, entry.claimed_at = entry.assignee, actor.username, now
            return {"from": before, "to": actor.username, "reason": reason}
        return self._resolve(actor, task_id, "escalation_taken_over", op)

    def escalation_extend(self, actor: "Actor", task_id: str, due: str, reason: str) -> EscalationView:
        """A new due time (a term from now, ``10 werkdagen``/``P7D``, or a date ``YYYY-MM-DD``
        meaning the end of that day); the policy starts over from it."""
        if not reason.strip():
            raise InvalidInput(Message(N_("extending a due date needs a reason")), field="reason")

        def op(session: Session, entry: HumanTask, now: datetime) -> dict[str, Any]:
            cal = workdays.calendar(self.settings.processes_dir)
            policy = policies.of(self.definition(session, _definition_id(session, entry)).elements,
                                 entry.element_id)
            new_due = _new_due(due, now, cal, policy)
            before = entry.due_at
            entry.due_at = new_due
            entry.escalation_level, entry.next_escalation_at = policies.first_step(policy, new_due, now, cal)
            return {"old_due_at": _iso(before), "due_at": _iso(new_due), "reason": reason}
        return self._resolve(actor, task_id, "escalation_extended", op)

    def _resolve(self, actor: "Actor", task_id: str, action: str, op: Any) -> EscalationView:
        with self.session() as session:
            entry = queue.get(session, task_id, lock=True)
            _may_handle(entry, actor)
            now = self.now()
            detail = op(session, entry, now)
            detail["escalated_to"] = entry.escalated_to
            entry.escalated_to, entry.escalated_at = None, None
            session.add(AuditEvent(instance_id=entry.instance_id, task_id=entry.id, element_id=entry.element_id,
                                   actor=actor.username, action=action, detail=detail, at=now))
            session.flush()
            return self._escalation_view(session, entry)


def due_steps(now: datetime, size: int) -> Select[tuple[HumanTask, int]]:
    """The sweep's query: the ``size`` tasks whose next step is due first. It reads the partial
    index ``ix_human_tasks_next_escalation`` from its start and stops after ``size`` rows, so
    its cost depends on ``size``, not on how many tasks are open (bench/escalation.py).
    ``FOR UPDATE OF human_tasks SKIP LOCKED`` on PostgreSQL; SQLite leaves the clause out (it
    serializes writers)."""
    return (select(HumanTask, Instance.definition_id)
            .join(Instance, Instance.id == HumanTask.instance_id)
            .where(HumanTask.next_escalation_at <= now)
            .order_by(HumanTask.next_escalation_at).limit(size)
            .with_for_update(of=HumanTask, skip_locked=True))


def _may_handle(entry: HumanTask, actor: "Actor") -> None:
    """The group it escalated to, or staff who see case data: the view shows the case's data."""
    if not sees_case_data(actor) and (entry.escalated_to is None or entry.escalated_to not in actor.groups):
        raise Forbidden(Message(N_("task %(task)s is not escalated to a group of yours"), task=entry.id))
    if entry.escalated_to is None:
        raise InvalidInput(Message(N_("task %(task)s is not escalated"), task=entry.id))


def _definition_id(session: Session, entry: HumanTask) -> int:
    return int(session.scalar(select(Instance.definition_id).where(Instance.id == entry.instance_id)) or 0)


# How far an escalation may put a task's due time off: a year (9999-12-31 or P99999Y overflowed
# the calendar's arithmetic; a task nobody need do for years is not a task to extend).
MAX_EXTENSION = timedelta(days=366)


def _new_due(due: str, now: datetime, cal: workdays.Calendar, policy: dict[str, Any]) -> datetime:
    too_far = InvalidInput(Message(N_("the new due time can be at most a year from now")), field="due")
    try:
        try:
            new_due = end_of_day(date.fromisoformat(due.strip()))
        except ValueError:
            try:
                new_due = policies.due_at(policy, due, now, cal)
            except workdays.TermError as exc:
                raise InvalidInput(Message(N_("due: %(problem)s (or a date YYYY-MM-DD)"), problem=exc.args[0]),
                                   field="due") from exc
    except (OverflowError, ValueError) as exc:  # a date or a term beyond the calendar
        raise too_far from exc
    if new_due <= now:
        raise InvalidInput(Message(N_("the new due time lies in the past")), field="due")
    if new_due > now + MAX_EXTENSION:
        raise too_far
    return new_due


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
