"""Service-task jobs, incidents and the job sweep: the runtime's side that workers and beat
drive (due timers are fired by certflow.engine.timers).

Jobs are delivered at least once; effects happen once. A worker runs a job as one advance of
its instance: it first checks the task still waits for *that* attempt (anything else is dropped
and logged), then runs the handler, keyed by the job's idempotency key, and completes the task,
all in one transaction (``run_job``).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import datetime, timedelta
from time import perf_counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Row, Select, bindparam, or_, select, update
from sqlalchemy.orm import Bundle, Session

from certflow.clock import CLOCK, OFFSET_COLUMN
from certflow.engine.dto import IncidentView, JobMessage
from certflow.engine.inline import VIA_JOB
from certflow.engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from certflow.i18n import Message, N_
from certflow.engine.messaging import emit, emit_many
from certflow.engine.projections import ATTEMPT, NOT_BEFORE, table_of
from certflow.engine.runtime import EffectKept
from certflow.engine.spiff import complete_service_task, find_task
from certflow.observability.context import bind
from certflow.registry import HandlerContext
from certflow.store.models import WITHOUT_STATE, AuditEvent, Incident, Instance, Job

if TYPE_CHECKING:
    from certflow.engine.facade import Actor
    from certflow.engine.runtime import Advance, Runtime

    _Base = Runtime
else:
    _Base = object

log = logging.getLogger(__name__)
# The chain of the job this thread is running (see ``JobsMixin.run_job``), while its
# after-commit work runs: jobs written then are kept for this worker as well.
_CHAIN: ContextVar[list[JobMessage] | None] = ContextVar("certflow_job_chain", default=None)


class JobsMixin(_Base):
    if TYPE_CHECKING:  # provided by InlineMixin

        def runs_in_advance(self, operator: str) -> bool: ...

        def call_in_advance(self, advance: Advance, operator: str, params: dict[str, Any], key: str
                            ) -> tuple[dict[str, Any] | None, tuple[str, str, bool] | None]: ...

    if TYPE_CHECKING:  # provided by OutboxMixin

        def run_outbox_job(self, job_id: int) -> str: ...

        def outbox_job_of(self, session: Session, instance_id: str, task_id: str) -> Job | None: ...

        def queue_attempt(self, session: Session, job: Any, attempt: int, now: datetime,
                          available_at: datetime) -> JobMessage: ...

    def handler_context(self, session: Session, idempotency_key: str, *, instance_id: str = "",
                        business_key: str = "") -> HandlerContext:
        """What a handler runs with: this session, the engine's clock and settings, and
        ``emit`` into this session's message outbox (routed after commit)."""
        now = self.now()

        def emit_message(name: str, payload: dict[str, Any], *,
                         idempotency_key: str | None = None) -> bool:
            return emit(session, name, payload, now, idempotency_key=idempotency_key,
                        source_instance_id=instance_id or None)

        def emit_messages(name: str, keyed: list[tuple[str, dict[str, Any]]]) -> int:
            return emit_many(session, name, keyed, now, source_instance_id=instance_id or None)

        return HandlerContext(session=session, now=now, idempotency_key=idempotency_key,
                              settings=self.settings, instance_id=instance_id,
                              business_key=business_key, emit=emit_message, emit_many=emit_messages)

    def run_job(self, job_id: int, chain: list[JobMessage] | None = None, *, load_state: bool = False,
                detached: bool = False) -> str:
        """Run one job's handler and deliver its outcome. Safe to call twice for one job.

        One transaction for the whole job, whatever the handler's effects: it locks the job's
        instance (the lock statement finds it from the job), reads the job under that lock (a
        duplicate delivery stops here, having advanced nothing), checks the task still waits
        for *this* attempt (a stale job runs nothing), runs the handler in a savepoint,
        completes the task and continues the instance (database-only tasks it reaches run
        inline too, certflow.engine.inline), and commits the effect with the new state.

        A handler with outside effects (SMTP) keys them itself (the e-mail row, unique on the
        idempotency key, committed with the state). If the advance fails *after* such a
        handler succeeded (a diagram error further on, a concurrent save), the advance is
        rolled back to just after the handler: the effect and the job's claim commit, and the
        result is delivered in an advance of its own, as before, so the effect is never redone
        because what followed it failed.

        ``chain``: a worker passes a list to keep the instance's work in this process. Jobs the
        delivering advance writes for the same instance, due now, are appended to it instead
        of being published (the live workflow stays cached here); the caller runs them next or
        publishes them. They are committed outbox rows like any other, so a crash before they
        run loses nothing: the sweep publishes them. The jobs that the work after its commit
        writes (an instance a thrown message starts or reaches, routed here) join the chain
        too: those instances were just advanced in this process as well.

        ``load_state``: read the instance's state with the lock, for a job that most likely
        follows another process's advance (one a worker took from the broker: its instance's
        workflow is not cached here, or at an older version), where reading it after the lock
        was one more round trip; the default reads it only when the cache misses.

        ``detached``: an outbox job (``JobMessage.detached``; certflow.engine.outbox), run
        without its instance. One run without the flag finds it out from the job's row."""
        if detached:
            return self.run_outbox_job(job_id)
        kept: EffectKept | None = None
        started = perf_counter()
        with self.session(clock=False) as session:  # the lock reads the clock
            instance, job = self._lock_job(session, job_id, load_state)
            if job.detached:
                session.rollback()  # nothing written: the outbox run locks the job alone
                return self.run_outbox_job(job_id)
            if job.status not in ("queued", "running"):
                log.info("job %s is %s; duplicate delivery ignored", job_id, job.status)
                return f"ignored:{job.status}"
            bind(job_id=job_id, instance_id=job.instance_id, task_id=job.task_id, handler=job.operator,
                 request_id=job.request_id)
            try:
                with self.advance_in(session, instance, "worker", inline=True, started=started) as advance:
                    outcome = self._deliver(advance, job, None, None, "", False, run_here=True)
            except EffectKept as exc:
                kept = exc  # the effect and the claim commit with this session
                session.connection().execute(_CLAIM, {"job_id": job_id})
        if kept is not None:
            log.warning("job %s: the advance after its handler failed; delivering its result again",
                        job_id, exc_info=kept.__cause__)
            return self.deliver_result(job_id, result=kept.result, chain=chain)
        self._after_local(advance, chain)
        return outcome

    def _after_local(self, advance: Advance, chain: list[JobMessage] | None) -> None:
        """``after_advance`` for a worker's advance: its jobs, and those the work after its
        commit writes, go to ``chain`` instead of the broker (see ``run_job``)."""
        if chain is None:
            self.after_advance(advance)
            return
        chain.extend(advance.published)
        advance.published = []
        token = _CHAIN.set(chain)
        try:
            self.after_advance(advance)
        finally:
            _CHAIN.reset(token)

    def publish(self, jobs: list[JobMessage]) -> None:
        """After commit: to the broker, or to the chain of the job this thread is running
        (``_after_local``), where the instances that wrote them are cached. The chain takes
        up to ``job_chain_limit`` jobs; more (a fan-out the drain started) go to the broker
        at once, for the other workers, rather than wait behind this worker's chain."""
        chain = _CHAIN.get()
        if chain is None:
            super().publish(jobs)
            return
        room = max(self.settings.job_chain_limit - len(chain), 0)
        chain.extend(jobs[:room])
        super().publish(jobs[room:])

    def deliver_result(self, job_id: int, result: dict[str, Any] | None = None, error: str | None = None,
                       tb: str = "", permanent: bool = False, run_here: bool = False,
                       chain: list[JobMessage] | None = None) -> str:
        """Deliver a job's outcome as a worker's advance (database-only service tasks it
        reaches run inside it). ``run_here``: run the job's handler in this advance first.
        ``chain``: as in ``run_job``."""
        started = perf_counter()
        with self.session(clock=False) as session:  # the lock reads the clock
            instance, job = self._lock_job(session, job_id)
            with self.advance_in(session, instance, "worker", inline=True, started=started) as advance:
                outcome = self._deliver(advance, job, result, error, tb, permanent, run_here)
        self._after_local(advance, chain)
        return outcome

    def _lock_job(self, session: Session, job_id: int, load_state: bool = False) -> tuple[Instance, Row[Any]]:
        """A job's instance, locked, and the job's row read under that lock, in one statement
        (``_JOB_LOCK``); the job's row is written once, at the end of ``_deliver``.
        ``load_state``: the instance's state too (see ``run_job``)."""
        read_clock = self.settings.clock_controllable
        row = session.execute(_JOB_LOCK[read_clock, load_state], {"job_id": job_id}).one_or_none()
        if row is None:
            raise NotFound(f"no job {job_id}")
        if read_clock:
            CLOCK.refreshed(row[2])
        return row[0], row[1]

    def _deliver(self, adv: Advance, job: Row[Any], result: dict[str, Any] | None, error: str | None,
                 tb: str, permanent: bool, run_here: bool) -> str:
        """The job's outcome, in an advance of its instance; ``job``: its row, read under the
        instance's lock (``_lock_job``), written here once at the end if it changed."""
        db = adv.session.connection()
        job_id = job.id
        status, finished_at, job_error = job.status, job.finished_at, job.error
        try:
            task = find_task(adv.workflow, job.task_id)
            if (adv.instance.status != "running" or task is None or task.state != TaskState.STARTED
                    or task.internal_data.get(ATTEMPT, 1) != job.attempt or job.status not in ("queued", "running")):
                if job.status in ("queued", "running"):
                    status, finished_at = "stale", adv.now
                log.info("stale result for job %s (%s) dropped", job_id, job.idempotency_key)
                adv.audit("job_result_dropped", job.task_id, job.element_id, job=job.idempotency_key)
                return "stale"
            if run_here:
                result, failure = self.call_in_advance(adv, job.operator, dict(job.params), job.idempotency_key)
                if failure is not None:
                    error, tb, permanent = failure
                elif not self.runs_in_advance(job.operator):
                    adv.keep_effect(result or {})  # a failure further on keeps this effect
            finished_at = adv.now
            if error is None:
                status = "done"
                complete_service_task(task, result or {})
                adv.audit("service_completed", job.task_id, job.element_id, operator=job.operator,
                          attempt=job.attempt)
                return "done"
            status, job_error = "failed", error
            adv.audit("service_failed", job.task_id, job.element_id, error=error, attempt=job.attempt)
            if permanent or job.attempt >= job.max_attempts:
                adv.session.add(Incident(
                    instance_id=adv.instance.id, task_id=job.task_id, element_id=job.element_id,
                    operator=job.operator, error=error, traceback=tb, attempts=job.attempt,
                    status="open", created_at=adv.now))
                adv.instance.has_incident = True
                adv.audit("incident_opened", job.task_id, job.element_id, error=error)
                return "incident"
            backoff = timedelta(seconds=self.settings.job_backoff_seconds * 2 ** (job.attempt - 1))
            task.internal_data[VIA_JOB] = True  # retried by its jobs only, after their backoff
            task.internal_data[ATTEMPT] = job.attempt + 1  # projection writes the next job
            task.internal_data[NOT_BEFORE] = (adv.now + backoff).isoformat()
            return "retry"
        finally:
            if (status, finished_at, job_error) != (job.status, job.finished_at, job.error):
                db.execute(JOB_FINISH, {"job_id": job_id, "status": status, "finished_at": finished_at,
                                         "error": job_error})
                adv.closed_jobs.add((job.task_id, job.attempt))

    # -- incidents ---------------------------------------------------------------------------
    def incidents(self, actor: "Actor", status: str | None = "open") -> list[IncidentView]:
        """Open incidents oldest first (the office's queue); any other status, or all of them,
        newest first (history, which only grows); at most ``MAX_INCIDENTS`` either way."""
        _staff(actor)
        with self.session() as session:
            order = ((Incident.created_at, Incident.id) if status == "open"
                     else (Incident.created_at.desc(), Incident.id.desc()))
            query = select(Incident).order_by(*order).limit(MAX_INCIDENTS)
            if status:
                query = query.where(Incident.status == status)
            return incident_views(session, session.scalars(query).all())

    def resolve_incident(self, actor: "Actor", incident_id: int, action: str) -> str:
        """``retry`` runs the service task again (a fresh attempt); ``skip`` completes it with
        an empty result so the process goes on."""
        _staff(actor)
        if action not in ("retry", "skip"):
            raise InvalidInput(Message(N_("unknown action %(action)s; use retry or skip"), action=repr(action)))
        with self.session() as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                raise NotFound(Message(N_("no incident %(incident)s"), incident=incident_id))
            if incident.status != "open":
                # A double click, or someone else was first: say what became of it.
                raise Conflict(Message(N_("incident %(incident)s was already handled (%(status)s)"),
                                       incident=incident_id, status=incident.status))
            instance_id = incident.instance_id
            if self.outbox_job_of(session, instance_id, incident.task_id) is not None:
                # Its task completed when the job was queued: the instance has moved on.
                retried = self._resolve_outbox_incident(session, actor, incident, action)
            else:
                retried = None
        if retried is not None:
            self.publish(retried)
            return "retried" if action == "retry" else "skipped"
        with self.advancing(instance_id, actor.username) as adv:
            incident = adv.session.get(Incident, incident_id)
            assert incident is not None
            if incident.status != "open":
                raise Conflict(f"incident {incident_id} is already {incident.status}")
            task = find_task(adv.workflow, incident.task_id)
            if task is None or task.state != TaskState.STARTED:
                raise Conflict(f"the task of incident {incident_id} no longer waits")
            if action == "retry":
                task.internal_data[ATTEMPT] = task.internal_data.get(ATTEMPT, 1) + 1
            else:
                complete_service_task(task, {"skipped": True})
            incident.status = "retried" if action == "retry" else "skipped"
            incident.resolved_at, incident.resolved_by = adv.now, actor.username
            adv.instance.has_incident = bool(adv.session.scalar(select(Incident.id).where(
                Incident.instance_id == instance_id, Incident.status == "open", Incident.id != incident_id)))
            adv.audit(f"incident_{incident.status}", incident.task_id, incident.element_id)
        return incident.status

    def _resolve_outbox_incident(self, session: Session, actor: "Actor", incident: Incident, action: str
                                 ) -> list[JobMessage]:
        """An incident of an outbox job (certflow.engine.outbox): ``retry`` queues a fresh
        attempt of the job; ``skip`` leaves it unsent. Neither advances the instance. Returns
        the job to publish after commit."""
        # Locked, then checked again: two staff resolving it at once resolve it once.
        locked = session.scalars(select(Incident).where(Incident.id == incident.id)
                                 .with_for_update().execution_options(populate_existing=True)).one()
        if locked.status != "open":
            raise Conflict(f"incident {incident.id} is already {locked.status}")
        now = self.now()
        published: list[JobMessage] = []
        if action == "retry":
            last = self.outbox_job_of(session, locked.instance_id, locked.task_id)
            assert last is not None
            published.append(self.queue_attempt(session, last, last.attempt + 1, now, now))
        locked.status = "retried" if action == "retry" else "skipped"
        locked.resolved_at, locked.resolved_by = now, actor.username
        session.flush()
        still_open = session.scalar(select(Incident.id).where(
            Incident.instance_id == locked.instance_id, Incident.status == "open"))
        session.execute(update(Instance).where(Instance.id == locked.instance_id)
                        .values(has_incident=still_open is not None))
        session.add(AuditEvent(instance_id=locked.instance_id, task_id=locked.task_id,
                               element_id=locked.element_id, actor=actor.username,
                               action=f"incident_{locked.status}", detail={"outbox": True}, at=now))
        return published

    # -- the sweep (beat); timers are in certflow.engine.timers ---------------------------------
    def sweep_jobs(self, limit: int = 1000) -> int:
        """Publish jobs that are due but not (or no longer) on the broker: retries whose backoff
        has passed, and jobs whose publish was lost between commit and broker.

        A queued job still unclaimed a while after its publish is either lost or waiting behind
        a backlog; the sweep cannot tell which. So each republish waits as long again as the job
        has already waited since it became due (30 s, 1, 2, 4 min ...): a lost message is found
        within a tick of ``sweep_after_seconds``, while a worker that is minutes behind gets a
        handful of duplicates per job, not one every 30 s (which filled the queue faster than
        the worker could drain it: 2,996 messages for 97 queued jobs under load)."""
        with self.session() as session:
            now = self.now()  # after the session read the shared clock (another process may move it)
            unclaimed_before = now - timedelta(seconds=self.settings.sweep_after_seconds)
            lost_before = now - timedelta(seconds=self.settings.running_lost_after_seconds)
            candidates = session.scalars(select(Job).where(Job.available_at <= now, or_(
                (Job.status == "queued") & or_(Job.published_at.is_(None), Job.published_at < unclaimed_before),
                (Job.status == "running") & (Job.published_at < lost_before),
            )).order_by(Job.published_at.is_not(None), Job.published_at, Job.available_at).limit(limit)
                # A job a worker is running right now has its row locked (``_JOB_LOCK``): it
                # needs no publish, and waiting for the run would hold up the tick.
                .with_for_update(skip_locked=True)).all()
            jobs = [job for job in candidates if _republish_due(job, now)]
            for job in jobs:
                job.published_at = now
            messages = [JobMessage(job.id, job.operator, job.detached) for job in jobs]
        if messages and self.publisher is not None:
            self.publisher(messages)
        return len(messages)


def _republish_due(job: Job, now: datetime) -> bool:
    """Whether the sweep publishes this job now (see ``sweep_jobs``): never published, a running
    job whose worker counts as lost, or a queued one unclaimed for as long again as it had
    waited when it was last published."""
    if job.published_at is None or job.status == "running":
        return True
    return now - job.published_at > max(job.published_at - job.available_at, timedelta(0))


MAX_INCIDENTS = 500  # a list's length, as the escalations'
_JOBS = table_of(Job)
JOB_FINISH = (update(_JOBS).where(_JOBS.c.id == bindparam("job_id"))
               .values(status=bindparam("status"), finished_at=bindparam("finished_at"), error=bindparam("error")))
_CLAIM = update(_JOBS).where(_JOBS.c.id == bindparam("job_id")).values(status="running")


def _job_lock(read_clock: bool, load_state: bool) -> Select[Any]:
    """The lock of a job's advance (certflow.engine.runtime.lock_instance: the instance's row,
    its state column deferred), with the job's row in the same statement, where a lock and a
    read under it were two round trips. The job's row is locked too, and after the instance:
    when the statement waits for the instance (another advance of it holds the lock) and that
    advance finishes this job meanwhile (a duplicate delivery), PostgreSQL re-reads the rows it
    locks once the wait is over, and only those, so a row read without a lock would still say
    "queued". Locking the instance first (the order of ``OF``) waits on nothing that an
    advance holding it may need: an advance locks its instance before any job row.
    ``read_clock``: the shared clock's offset as a third column (``lock_instance``);
    ``load_state``: the state column not deferred."""
    statement: Select[Any] = select(Instance, Bundle("job", *_JOBS.c))
    if not load_state:
        statement = statement.options(WITHOUT_STATE)
    statement = (statement
                 .join_from(Instance, _JOBS, _JOBS.c.instance_id == Instance.id)
                 .where(_JOBS.c.id == bindparam("job_id"))
                 .with_for_update(of=[table_of(Instance).c.id, _JOBS.c.id]))
    return statement.add_columns(OFFSET_COLUMN) if read_clock else statement


_JOB_LOCK = {(clock, state): _job_lock(clock, state) for clock in (False, True) for state in (False, True)}

def incident_views(session: Session, incidents: Sequence[Incident]) -> list[IncidentView]:
    """Incidents as people see them, each saying whether it is an outbox job's (the case did
    not wait for it): one read of those jobs for all of them."""
    detached: set[tuple[str, str]] = set()
    if incidents:
        detached = {(row.instance_id, row.task_id) for row in session.execute(
            select(Job.instance_id, Job.task_id).where(
                Job.detached.is_(True), Job.instance_id.in_(sorted({i.instance_id for i in incidents}))))}
    return [IncidentView(i.id, i.instance_id, i.element_id, i.operator, i.error, i.attempts, i.status,
                         i.created_at, (i.instance_id, i.task_id) in detached) for i in incidents]


def _staff(actor: "Actor") -> None:
    if not actor.is_staff:
        raise Forbidden("only staff may handle incidents")
