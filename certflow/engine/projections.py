"""Projections: the tables derived from an instance's engine state, rewritten on every save.

Queue entries (ready user tasks), outbox jobs (waiting service tasks), message subscriptions
and the instance's next timer due time are computed here from the workflow, in the same
transaction as the state, so they cannot drift from it. Claims are the one thing kept across
saves: a task that stays ready under the same id keeps its assignee.

They read the one walk of the task tree the save made, and write with Core statements (rows
as dicts, one executemany per table): the ORM's unit of work would cost more than the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from certflow import workdays
from certflow.engine import elements as el
from certflow.engine.dto import JobMessage
from certflow.engine import policies
from certflow.engine.spiff import SERVICE_PARAMS, AsyncServiceTask, verifying
from certflow.observability.context import request_id as current_request_id
from certflow.settings import Settings
from certflow.store.base import Base
from certflow.store.models import AuditEvent, HumanTask, Instance, Job, Subscription
from certflow.store.workspace import TaskDraft

def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements (rows as dicts, executemany) on the hot path."""
    return cast(Table, model.__table__)


class _Statements:
    """The projections' statements, built once: run on the session's connection with plain
    parameters, they skip statement construction, cache-key generation and the ORM's execute
    path on every save (several per advance)."""

    def __init__(self) -> None:
        human, jobs, subs = table_of(HumanTask), table_of(Job), table_of(Subscription)
        # Every row of the instance but those kept, returning what the audit of a withdrawn
        # task needs: one statement where a read and a delete were two.
        self.human_replace = (delete(human).where(human.c.instance_id == bindparam("instance_id"),
                                                  human.c.id.not_in(bindparam("keep", expanding=True)))
                              .returning(human.c.id, human.c.element_id, human.c.assignee, human.c.due_at,
                                         human.c.created_at, human.c.escalation_level))
        self.human_clear = (delete(human).where(human.c.instance_id == bindparam("instance_id"))
                            .returning(*self.human_replace.exported_columns))
        self.human_ids = select(human.c.id).where(human.c.instance_id == bindparam("instance_id"))
        self.human_insert = insert(human)
        self.audit_insert = insert(table_of(AuditEvent))
        drafts = table_of(TaskDraft)
        self.drafts_delete = delete(drafts).where(drafts.c.task_id.in_(bindparam("ids", expanding=True)))
        self.jobs_open = select(jobs.c.task_id, jobs.c.attempt).where(
            jobs.c.instance_id == bindparam("instance_id"), jobs.c.status.in_(("queued", "running", "failed")),
            jobs.c.detached.is_(False))  # an outbox job's task completed when it was queued
        # By idempotency key (unique): the save knows the jobs it wrote by task and attempt.
        self.jobs_stale = (update(jobs).where(jobs.c.idempotency_key.in_(bindparam("keys", expanding=True)),
                                              jobs.c.status.in_(("queued", "running")))
                           .values(status="stale", finished_at=bindparam("finished_at")))
        self.job_insert = insert(jobs)
        self.subs_delete = delete(subs).where(subs.c.instance_id == bindparam("instance_id"))
        self.subs_insert = insert(subs)


_Q = _Statements()

ATTEMPT = "certflow_attempt"
# An automatic retry waits out its backoff; set at failure time, absent for a manual retry.
NOT_BEFORE = "certflow_not_before"


@dataclass
class Projected:
    """What a save produced that must happen after commit."""

    publish: list[JobMessage]
    # The instance now waits for a message it did not wait for before this save.
    subscribed: bool = False
    # The instance's queue entries as this save left them, when it wrote every one of them
    # (or none is left): the rows as inserted, so an answer built from them (the tasks a
    # completion opened, a start's view) needs no read. None when a row was kept from an
    # earlier save: its claim may have changed since, so that answer reads the table.
    queue: list[dict[str, Any]] | None = None


def project(session: Session, instance: Instance, tasks: list[Task], workflow: BpmnWorkflow,
            now: datetime, settings: Settings, evaluate: Any, elements: dict[str, Any] | None = None,
            closed_jobs: frozenset[tuple[str, int]] | set[tuple[str, int]] = frozenset()) -> Projected:
    """Rewrite the projections that changed since the last save (compared by signature).
    ``tasks`` is every task of the workflow, as the save walked them; ``closed_jobs``: the
    (task id, attempt) of jobs this advance finished itself (their rows say so already)."""
    before = instance.projected or {}
    ready = {str(t.id): t for t in tasks if t.state == TaskState.READY and t.task_spec.manual}
    waiting = {
        str(t.id): t for t in tasks
        if t.state == TaskState.STARTED and isinstance(t.task_spec, AsyncServiceTask)
    }
    subscriptions = _wanted_subscriptions(instance, [t for t in tasks if _waits_for_message(t)])
    after = {
        "human": sorted(ready),
        "jobs": sorted([tid, t.internal_data.setdefault(ATTEMPT, 1)] for tid, t in waiting.items()),
        "subs": sorted([name, key] for name, key in subscriptions),
    }
    new = instance.projected is None  # a just-started instance has no rows yet: nothing to read
    publish: list[JobMessage] = []
    queue: list[dict[str, Any]] | None = [] if not ready else None
    if new or after["human"] != before.get("human"):
        queue = _human_tasks(session, instance, ready, now, evaluate, before.get("human"), Due(elements, settings),
                             tasks, new)
    if new or after["jobs"] != before.get("jobs"):
        publish = _jobs(session, instance, waiting, now, settings, new, before.get("jobs"), closed_jobs)
    subscribed = False
    if new or after["subs"] != before.get("subs"):
        # Only this function writes them: none projected last time is none there now.
        _subscriptions(session, instance, subscriptions, new or before.get("subs") == [])
        subscribed = bool(subscriptions - {(name, key) for name, key in before.get("subs") or []})
    instance.projected = after
    instance.next_due_at = next_due(workflow)
    return Projected(publish=publish, subscribed=subscribed, queue=queue)


def _human_tasks(session: Session, instance: Instance, ready: dict[str, Task], now: datetime,
                 evaluate: Any, projected: list[str] | None, due: "Due", tasks: list[Task], new: bool
                 ) -> list[dict[str, Any]] | None:
    """``projected``: the ready task ids whose rows the last save wrote (None: not known, so
    read); ``new``: the instance has no rows yet. Those still ready keep their rows (and
    claims); every other row of the instance is deleted. Returns the rows inserted when no
    row was kept (``Projected.queue``), else None.

    The rows of an instance are exactly those its last save projected: only this function
    inserts or deletes them, in the transaction that records ``projected``. So when none of
    those left the queue there is nothing to delete, and no statement is run for it (most
    saves that open a task close none); ``CERTFLOW_VERIFY_STATE`` checks the table holds
    exactly the kept rows then. A save that closes one deletes every row but those kept, so a
    row nothing accounts for (an edited table) goes with the next task that closes."""
    db = session.connection()
    kept: set[str] = set()
    if not new:
        if projected is None:
            projected = list(db.execute(_Q.human_ids, {"instance_id": instance.id}).scalars())
        kept = {tid for tid in projected if tid in ready}
        if len(kept) < len(projected):
            # Keeping none (the usual save that closes a task): every row of the instance, with
            # no list to expand (an expanding NOT IN is rendered afresh on every execution).
            params: dict[str, Any] = {"instance_id": instance.id}
            replace = _Q.human_clear if not kept else _Q.human_replace
            if kept:
                params["keep"] = sorted(kept)
            gone = [row for row in db.execute(replace, params) if row.id not in ready]
            if gone:
                _audit_withdrawn(session, instance, gone, tasks, now)
                # What anyone typed into a task's form and kept (a dossier drafted for weeks)
                # goes with the task, however it left: sent through the API, by a timer, with
                # a cancelled case. Nobody could open or discard it any more.
                db.execute(_Q.drafts_delete, {"ids": [row.id for row in gone]})
        if verifying():
            present = set(db.execute(_Q.human_ids, {"instance_id": instance.id}).scalars())
            if present != kept:
                raise AssertionError(f"queue entries {sorted(present)} differ from the projected {sorted(kept)}")
    rows = [_queue_entry(instance, task, now, evaluate, due) for tid, task in ready.items() if tid not in kept]
    if rows:
        db.execute(_Q.human_insert, rows)
    return None if kept else rows


def _audit_withdrawn(session: Session, instance: Instance, rows: list[Any], tasks: list[Task],
                     now: datetime) -> None:
    """A human task that leaves the queue without being completed (an interrupting boundary
    timer or message, a cancelled instance) is audited with its due time beside the actual
    time, as a completion is (Engine.complete): the audit keeps both once the row is gone."""
    completed = {str(t.id) for t in tasks if t.state == TaskState.COMPLETED}
    events = [dict(
        instance_id=instance.id, task_id=row.id, element_id=row.element_id, actor="process",
        action="task_cancelled", at=now, detail={
            "due_at": row.due_at.isoformat() if row.due_at else None,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "assignee": row.assignee, "escalation_level": row.escalation_level,
            "overdue": bool(row.due_at and _aware(row.due_at) < now),
        }) for row in rows if row.id not in completed]
    if events:
        session.connection().execute(_Q.audit_insert, events)


def _aware(value: datetime) -> datetime:
    """SQLite gives naive UTC datetimes back."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


class Due:
    """Due time and first escalation step of a new queue entry, by the version's policy."""

    def __init__(self, elements: dict[str, Any] | None, settings: Settings) -> None:
        self.elements, self.settings = elements, settings

    def plan(self, element_id: str, due: str | None, now: datetime) -> tuple[datetime | None, int, datetime | None]:
        if not due:
            return None, 0, None
        cal = workdays.calendar(self.settings.processes_dir)
        policy = policies.of(self.elements, element_id)
        due_at = policies.due_at(policy, due, now, cal)
        level, next_at = policies.first_step(policy, due_at, now, cal)
        return due_at, level, next_at


def _queue_entry(instance: Instance, task: Task, now: datetime, evaluate: Any, due: Due) -> dict[str, Any]:
    spec = task.task_spec
    props = el.properties(spec)
    assignee = evaluate(task, props["assignee"]) if props.get("assignee") else None
    due_text = str(evaluate(task, props["due"])) if props.get("due") else None
    due_at, level, next_escalation_at = due.plan(spec.bpmn_id, due_text, now)
    return dict(
        id=str(task.id), instance_id=instance.id, process_id=instance.process_id,
        business_key=instance.business_key, element_id=spec.bpmn_id,
        title=spec.bpmn_name or spec.bpmn_id, candidate_group=spec.lane,
        assignee=str(assignee) if assignee else None, form=props.get("form"),
        priority=int(props.get("priority", 50)), due_at=due_at, created_at=now,
        claimed_at=now if assignee else None, context=shown(task),
        escalation_level=level, next_escalation_at=next_escalation_at,
    )


def shown(task: Task) -> dict[str, Any]:
    names = [n.strip() for n in el.properties(task.task_spec).get("show", "").split(",") if n.strip()]
    return {name: task.data.get(name) for name in names}


def _jobs(session: Session, instance: Instance, waiting: dict[str, Task], now: datetime,
          settings: Settings, new: bool, projected: list[list[Any]] | None,
          closed: frozenset[tuple[str, int]] | set[tuple[str, int]]) -> list[JobMessage]:
    """``projected``: the [task id, attempt] of the jobs the last save knew open (the save
    writes a job exactly when a pair appears there, in the same transaction as the pairs), so
    they are not read back; None: not known, so the open rows are read. A job whose task no
    longer waits for that attempt (cancelled by a timer, retried since, run inline) is marked
    stale, unless this advance ``closed`` it itself."""
    db = session.connection()
    if new:
        current: set[tuple[str, int]] = set()
    elif projected is None:
        current = {(j.task_id, j.attempt) for j in db.execute(_Q.jobs_open, {"instance_id": instance.id})}
    else:
        current = {(tid, attempt) for tid, attempt in projected}
    stale = sorted(f"{instance.id}:{tid}:{attempt}" for tid, attempt in current - closed if (
        tid not in waiting or waiting[tid].internal_data.get(ATTEMPT, 1) != attempt))
    if stale:  # the status condition leaves a failed job failed
        db.execute(_Q.jobs_stale, {"keys": stale, "finished_at": now})
    publish = []
    for tid, task in waiting.items():
        attempt = task.internal_data.setdefault(ATTEMPT, 1)
        if (tid, attempt) in current:
            continue
        not_before = task.internal_data.pop(NOT_BEFORE, None)
        available = max(now, datetime.fromisoformat(not_before)) if not_before else now
        delay = available - now
        operator = task.task_spec.operation_name
        job_id = db.execute(_Q.job_insert, dict(
            idempotency_key=f"{instance.id}:{tid}:{attempt}", instance_id=instance.id, task_id=tid,
            element_id=task.task_spec.bpmn_id, operator=operator,
            params=task.internal_data.get(SERVICE_PARAMS, {}), attempt=attempt,
            max_attempts=task.task_spec.retries or settings.job_max_attempts, status="queued",
            available_at=available, published_at=now if delay == timedelta(0) else None,
            created_at=now, request_id=current_request_id(),
        )).inserted_primary_key[0]  # SQLite's lastrowid; PostgreSQL returns it
        if delay == timedelta(0):
            publish.append(JobMessage(job_id, operator))
    return publish


def correlation_key(variable: str | None, value: Any) -> str:
    return f"{variable or 'business_key'}={value}"


def _wanted_subscriptions(instance: Instance, waiting: list[Task]) -> set[tuple[str, str]]:
    wanted = set()
    for task in waiting:
        variable = el.properties(task.task_spec).get("correlation")
        value = task.data.get(variable) if variable else instance.business_key
        wanted.add((task.task_spec.event_definition.name, correlation_key(variable, value)))
    return wanted


def _subscriptions(session: Session, instance: Instance, wanted: set[tuple[str, str]], none_yet: bool) -> None:
    db = session.connection()
    if not none_yet:
        db.execute(_Q.subs_delete, {"instance_id": instance.id})
    if wanted:
        db.execute(_Q.subs_insert, [
            dict(instance_id=instance.id, message_name=name, correlation_key=key) for name, key in sorted(wanted)])


def _waits_for_message(task: Task) -> bool:
    return task.state == TaskState.WAITING and isinstance(
        getattr(task.task_spec, "event_definition", None), MessageEventDefinition)


def waiting_message_tasks(workflow: BpmnWorkflow) -> list[Task]:
    return [t for t in workflow.get_tasks(state=TaskState.WAITING) if _waits_for_message(t)]


TIMER_EVENTS = frozenset({"TimeDateEventDefinition", "DurationTimerEventDefinition", "CycleTimerEventDefinition"})


def next_due(workflow: BpmnWorkflow) -> datetime | None:
    """Earliest time a waiting timer fires, read from the engine's own pending-event view."""
    times = []
    for pending in workflow.waiting_events():
        if pending.event_type not in TIMER_EVENTS or pending.value is None:
            continue
        if isinstance(pending.value, str):  # a finished cycle reports its dict instead
            times.append(TimerEventDefinition.get_datetime(pending.value))
    return min(times) if times else None
