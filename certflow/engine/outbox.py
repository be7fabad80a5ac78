"""Outbox service tasks: outside effects the process does not wait for.

A handler declared ``effects="outbox"`` at registration (certflow.registry; ``email/send``)
has an effect outside certflow that nothing further in the process depends on: a notification
mail. Deploy records that on each of its service tasks (``elements[..]["detached"]``), unless the
diagram attached a boundary event to the task (then the process waits for the handler, so the
event can still interrupt it) or gave it the property ``wait`` = ``true``: a later step needs the
mail gone first (data_erasure's last mail, before the address it goes to is erased).

The advance that reaches such a task writes its job into the transactional outbox and completes
the task at once, with ``{"status": "queued", "job_id": ..}`` as its result, and the engine goes
on, all in that one transaction: the web writes the job as it always did, and runs no handler.
After commit the job is published; a worker runs the handler keyed by the job's idempotency key
(``instance:task:attempt``: the e-mail row is unique on it) and marks the job done, in one
transaction that locks only the job's row: the instance is not advanced again, so the worker
neither locks it nor loads its state.

What changes for a process: a mail server that is down no longer stops the instance at its mail.
The job is retried with backoff as any job (a new row per attempt, published by the sweep when its
backoff has passed); when it fails for good an incident opens on the instance, as before, and
staff retry the job (a fresh attempt) or skip it from the incident, which no longer moves the
instance (it has moved on already).

The guarantees stay: the job is committed with the state that queued it (a crash after commit
loses nothing: the sweep publishes it), delivered at least once and its effect keyed once; it is
published only after that commit.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session

from certflow.clock import CLOCK, OFFSET_COLUMN
from certflow.engine.dto import JobMessage
from certflow.engine.errors import NotFound
from certflow.engine.jobs import JOB_FINISH
from certflow.engine.projections import ATTEMPT, table_of
from certflow.engine.runtime import AUDIT_INSERT
from certflow.engine.spiff import SERVICE_PARAMS, AsyncServiceTask, complete_service_task
from certflow.observability.context import bind
from certflow.observability.context import request_id as current_request_id
from certflow.store.models import Incident, Instance, Job

if TYPE_CHECKING:
    from certflow.engine.inline import Failure
    from certflow.engine.runtime import Advance, Runtime

    _Base = Runtime
else:
    _Base = object

log = logging.getLogger(__name__)

_JOBS, _INSTANCES = table_of(Job), table_of(Instance)
_JOB_INSERT = _JOBS.insert()
_HAS_INCIDENT = (update(_INSTANCES).where(_INSTANCES.c.id == bindparam("instance_id"))
                 .values(has_incident=True))


def _lock(read_clock: bool) -> Select[Any]:
    """An outbox job's row, locked (only it: its run writes no instance), with its instance's
    business key (the handler's context) and, ``read_clock``, the shared clock's offset."""
    statement = (select(*_JOBS.c, _INSTANCES.c.business_key)
                 .join_from(_JOBS, _INSTANCES, _INSTANCES.c.id == _JOBS.c.instance_id)
                 .where(_JOBS.c.id == bindparam("job_id"))
                 .with_for_update(of=_JOBS.c.id))
    return statement.add_columns(OFFSET_COLUMN) if read_clock else statement


_LOCK = {clock: _lock(clock) for clock in (False, True)}


class OutboxMixin(_Base):
    if TYPE_CHECKING:  # provided by InlineMixin

        def call_in_session(self, session: Session, operator: str, params: dict[str, Any], key: str,
                            instance_id: str, business_key: str
                            ) -> tuple[dict[str, Any] | None, Failure | None, int]: ...

    # -- in the advance ----------------------------------------------------------------------
    def queue_outbox_tasks(self, advance: Advance, tasks: list[Task]) -> bool:
        """Write the job of every outbox task waiting in ``tasks`` and complete the task; True
        when there was one (the engine then runs on). The jobs are published after commit."""
        elements = advance.definition.elements
        # A task that waits for an ordinary job already (it was reached on a version whose
        # handler was not an outbox one, and the instance has moved to this version since)
        # finishes the way it began: by that job's result.
        waiting = {tid for tid, _ in (advance.instance.projected or {}).get("jobs", [])}
        due = [t for t in tasks if t.state == TaskState.STARTED and isinstance(t.task_spec, AsyncServiceTask)
               and elements.get(t.task_spec.bpmn_id, {}).get("detached") and str(t.id) not in waiting]
        if not due:
            return False
        db = advance.session.connection()
        for task in due:
            spec, tid = task.task_spec, str(task.id)
            attempt = task.internal_data.get(ATTEMPT, 1)
            key = f"{advance.instance.id}:{tid}:{attempt}"
            job_id = db.execute(_JOB_INSERT, dict(
                idempotency_key=key, instance_id=advance.instance.id, task_id=tid, element_id=spec.bpmn_id,
                operator=spec.operation_name, params=task.internal_data.get(SERVICE_PARAMS, {}),
                attempt=attempt, max_attempts=spec.retries or self.settings.job_max_attempts,
                status="queued", available_at=advance.now, published_at=advance.now,
                created_at=advance.now, request_id=current_request_id(), detached=True,
            )).inserted_primary_key[0]
            advance.outbox.append(JobMessage(job_id, spec.operation_name, detached=True))
            complete_service_task(task, {"status": "queued", "job_id": job_id})
            advance.audit("service_queued", tid, spec.bpmn_id, operator=spec.operation_name, job=key)
        return True

    # -- on the worker -----------------------------------------------------------------------
    def run_outbox_job(self, job_id: int) -> str:
        """Run an outbox job's handler and record its outcome, in one transaction that locks
        the job's row only. Safe to run twice: a job no longer queued is left alone, and the
        handler's effect is keyed by the job's idempotency key."""
        with self.session(clock=False) as session:  # the lock reads the clock
            read_clock = self.settings.clock_controllable
            job = session.execute(_LOCK[read_clock], {"job_id": job_id}).one_or_none()
            if job is None:
                raise NotFound(f"no job {job_id}")
            if read_clock:
                CLOCK.refreshed(job.clock_offset)
            if job.status not in ("queued", "running"):
                log.info("job %s is %s; duplicate delivery ignored", job_id, job.status)
                return f"ignored:{job.status}"
            bind(job_id=job_id, instance_id=job.instance_id, task_id=job.task_id, handler=job.operator,
                 request_id=job.request_id)
            _, failure, emitted = self.call_in_session(session, job.operator, dict(job.params),
                                                       job.idempotency_key, job.instance_id, job.business_key)
            outcome = self._record(session, job, failure, CLOCK.now())
        if emitted:
            self.drain_messages(inline=True)
        return outcome

    def _record(self, session: Session, job: Any, failure: Failure | None, now: datetime) -> str:
        db = session.connection()
        event = dict(instance_id=job.instance_id, task_id=job.task_id, element_id=job.element_id,
                     actor="worker", at=now)
        if failure is None:
            db.execute(JOB_FINISH, {"job_id": job.id, "status": "done", "finished_at": now, "error": None})
            db.execute(AUDIT_INSERT, dict(event, action="service_completed", detail={
                "operator": job.operator, "attempt": job.attempt, "outbox": True}))
            return "done"
        error, tb, permanent = failure
        db.execute(JOB_FINISH, {"job_id": job.id, "status": "failed", "finished_at": now, "error": error})
        events = [dict(event, action="service_failed", detail={"error": error, "attempt": job.attempt, "outbox": True})]
        if permanent or job.attempt >= job.max_attempts:
            session.add(Incident(instance_id=job.instance_id, task_id=job.task_id, element_id=job.element_id,
                                 operator=job.operator, error=error, traceback=tb, attempts=job.attempt,
                                 status="open", created_at=now))
            db.execute(_HAS_INCIDENT, {"instance_id": job.instance_id})
            events.append(dict(event, action="incident_opened", detail={"error": error, "outbox": True}))
            outcome = "incident"
        else:
            backoff = timedelta(seconds=self.settings.job_backoff_seconds * 2 ** (job.attempt - 1))
            # Published by the sweep once its backoff has passed.
            self.queue_attempt(session, job, job.attempt + 1, now, now + backoff)
            outcome = "retry"
        db.execute(AUDIT_INSERT, events)
        return outcome

    def queue_attempt(self, session: Session, job: Any, attempt: int, now: datetime,
                      available_at: datetime) -> JobMessage:
        """The next attempt of outbox job ``job`` (a row of it), as a row of its own (its
        idempotency key names the attempt). Due now, it counts as published (the caller
        publishes it after commit); later, the sweep publishes it once it is due."""
        published_at = now if available_at <= now else None
        job_id = session.connection().execute(_JOB_INSERT, dict(
            idempotency_key=f"{job.instance_id}:{job.task_id}:{attempt}", instance_id=job.instance_id,
            task_id=job.task_id, element_id=job.element_id, operator=job.operator, params=job.params,
            attempt=attempt, max_attempts=max(job.max_attempts, attempt), status="queued",
            available_at=available_at, published_at=published_at, created_at=now,
            request_id=job.request_id, detached=True,
        )).inserted_primary_key[0]
        return JobMessage(job_id, job.operator, detached=True)

    def outbox_job_of(self, session: Session, instance_id: str, task_id: str) -> Job | None:
        """The last attempt of the outbox job of a task, if its task is an outbox task."""
        return session.scalars(select(Job).where(Job.instance_id == instance_id, Job.task_id == task_id,
                                                 Job.detached.is_(True))
                               .order_by(Job.attempt.desc()).limit(1)).first()
