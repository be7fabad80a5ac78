"""The engine facade: everything web, worker, scheduler and CLI may ask of the engine.

Every method takes the acting user (``Actor``) and returns DTOs. Authorization lives here so
the CLI and the HTTP API can never disagree about who may do what.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from certflow.clock import CLOCK, OFFSET_COLUMN
from certflow.engine import assignment
from certflow.engine.analytics import AnalyticsMixin
from certflow.engine import deploy as deploying
from certflow.engine import rules
from certflow.engine.rules import SCHEDULE
from certflow.engine import queue
from certflow.engine.dto import Completed, DeployedVersion, InboxPage, InstanceView, JobMessage, TaskView
from certflow.engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from certflow.engine.inbox import PAGE_SIZE
from certflow.engine.inline import InlineMixin
from certflow.engine.escalation import EscalationMixin
from certflow.engine import overview
from certflow.engine.delegation import HandoverMixin
from certflow.engine.dto import CaseProgress
from certflow.engine.inbox_filters import InboxFilter
from certflow.engine.jobs import JobsMixin
from certflow.engine.timers import TimersMixin
from certflow.engine.messaging import MessagingMixin
from certflow.engine.outbox import OutboxMixin
from certflow.engine.monitor import MonitorMixin
from certflow.roles import sees_case_data
from certflow.engine.projections import correlation_key, table_of, waiting_message_tasks
from certflow.engine.runtime import Advance, LoadedDefinition, Runtime
from certflow.engine.studio import StudioMixin
from certflow.engine.studio_tables import TableStudioMixin
from certflow.engine.spiff import SERIALIZER_VERSION, find_task, last_task_data, state_to_dict, verifying
from certflow.store.base import new_id
from certflow.store.models import (WITHOUT_STATE, AuditEvent, Definition, HumanTask, Instance, Subscription,
                                   User)
from certflow.i18n import Message, N_


@dataclass(frozen=True)
class Actor:
    username: str
    groups: tuple[str, ...] = ()
    is_staff: bool = False

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        return cls(name, (), True)


MAX_MESSAGE_TTL = timedelta(days=3650)


_INSTANCES = table_of(Instance)
_INSERT_INSTANCE = insert(_INSTANCES)
# Built once: the instance view's reads, by instance id (start answers with one).
_VIEW_TASKS = select(HumanTask).where(HumanTask.instance_id == bindparam("instance_id"))
_VIEW_WAITS = select(Subscription).where(Subscription.instance_id == bindparam("instance_id"))
# An instance, and the shared clock's offset in the same statement (a view's one read before
# it asks the time).
_INSTANCE_CLOCK = select(Instance, OFFSET_COLUMN).where(Instance.id == bindparam("instance_id"))
_WAITING = select(Subscription.instance_id).where(Subscription.message_name == bindparam("name"),
                                                  Subscription.correlation_key == bindparam("key"))


def own_key(username: str, business_key: str) -> None:
    """A key with a colon belongs to the person named before it (``ann:erasure``; a username
    has no colon): the keys Mijn CMI gives a person's own requests. Anyone but staff may use
    only their own: starting ``ann:erasure`` first kept ann's own erasure request from starting."""
    owner, colon, _ = business_key.partition(":")
    if colon and owner != username:
        raise InvalidInput(Message(N_("a case number with a colon starts with your own username: "
                                      "%(user)s:…"), user=username), field="business_key")


class Engine(MonitorMixin, StudioMixin, TableStudioMixin, AnalyticsMixin, HandoverMixin, EscalationMixin, MessagingMixin, JobsMixin,
             TimersMixin, OutboxMixin, InlineMixin, Runtime):
    def actor(self, username: str) -> Actor:
        """Who ``username`` is to the engine (groups, staff): the CLI's ``--as``."""
        with self.session() as session:
            user = session.get(User, username)
            if user is None:
                raise NotFound(Message(N_("no user '%(user)s'"), user=username))
            return Actor(user.username, tuple(user.groups or ()), user.is_staff)

    # -- definitions -------------------------------------------------------------------------
    def deploy(self, actor: Actor, processes_dir: Path | None = None, only: list[str] | None = None) -> list[DeployedVersion]:
        rules.staff_only(actor, "deploy")
        with self.session() as session:
            deployed = deploying.deploy(session, processes_dir or self.settings.processes_dir, actor.username,
                                        self.registry, only)
        self.ensure_schedules()
        return deployed

    def deploy_plan(self) -> list[tuple[str, str]]:
        """What ``deploy`` would store (new | changed | unchanged per process), writing nothing."""
        with self.session() as session:
            return deploying.plan(session, self.settings.processes_dir, self.registry)

    def ensure_schedules(self) -> list[str]:
        """Every process whose start event is a timer gets one standing instance on its latest
        version, waiting for that timer (business key ``schedule``); an older version's one is
        cancelled. Each firing of a cycle runs the process once more inside that instance."""
        started = []
        with self.session() as session:
            timed = {pid: definition_id for pid, (definition_id, elements) in self.latest_elements(session).items()
                     if any(m.get("type") == "StartEvent" and m.get("timer") for m in elements.values())}
            running = session.execute(select(Instance.id, Instance.process_id, Instance.definition_id).where(
                Instance.business_key == SCHEDULE, Instance.status == "running")).all()
        current = {pid for _, pid, did in running if timed.get(pid) == did}
        for instance_id, pid, did in running:
            if pid in timed and timed[pid] != did:
                self.cancel(Actor.system("deploy"), instance_id, "superseded by a new version")
        for pid in timed:
            if pid not in current:
                started.append(self.start(Actor.system("deploy"), pid, SCHEDULE, {}).id)
        return started

    def definitions(self) -> list[dict[str, Any]]:
        with self.session() as session:
            rows = session.execute(select(
                Definition.id, Definition.process_id, Definition.version, Definition.name,
                Definition.content_hash, Definition.deployed_at, Definition.deployed_by,
            ).order_by(Definition.process_id, Definition.version)).all()
            return [dict(r._mapping) for r in rows]

    def definition_source(self, process_id: str, version: int | None = None) -> dict[str, Any]:
        with self.session() as session:
            row = rules.definition(session, process_id, version)
            return {"process_id": row.process_id, "version": row.version, "sources": row.sources, "forms": row.forms}

    # -- instances ---------------------------------------------------------------------------
    def start(self, actor: Actor, process_id: str, business_key: str, data: dict[str, Any] | None = None) -> InstanceView:
        """Staff may start on someone's behalf; anyone else starts only for themselves: the
        start event's ``subject`` variable (default ``candidate``) is set to the starter."""
        data = dict(data or {})
        rules.bounded(data, "data")
        views: list[InstanceView] = []
        self._start(actor.username, process_id, business_key, data, view=(actor, views))
        return views[0]

    def start_refusal(self, actor: Actor, process_id: str, data: dict[str, Any] | None = None) -> str | None:
        """Why ``actor`` could not start ``process_id`` for themselves now, or None: the start
        rules ``start`` applies before anything moves (who may start it, the start event's
        guard on ``data``), asked before a person answers any question (Mijn CMI's sign-up for
        recertification tells someone not in the register at once, not after the last
        question). Changes nothing; ``start`` still checks all of it."""
        data = dict(data or {})
        rules.bounded(data, "data")
        with self.session() as session:
            definition = self.definition(session, rules.latest_id(session, process_id))
            try:
                rules.may_start(definition.elements, actor, process_id)
            except Forbidden as exc:
                return exc.message
            data[rules.subject_variable(definition.elements)] = actor.username
            try:
                rules.check_guards(session, self.registry, definition.elements, self.now(), data)
            except InvalidInput as exc:
                return exc.message
        return None

    def start_by_message(self, process_id: str, business_key: str, message: str,
                         payload: dict[str, Any], message_id: int | None = None, inline: bool = False) -> str:
        """``inline``: started by a worker (see ``drain_messages``)."""
        return self._start(f"message:{message}", process_id, business_key, {}, (message, payload, message_id),
                           inline=inline)

    def _start(self, username: str, process_id: str, business_key: str, data: dict[str, Any],
               message: tuple[str, dict[str, Any], int | None] | None = None,
               view: tuple[Actor, list[InstanceView]] | None = None, inline: bool = False) -> str:
        with self.session(clock=False) as session:  # the latest version's lookup reads the clock
            instance_id, committed = self.start_in(session, username, process_id, business_key, data, message,
                                                   view, inline, read_clock=True)
        committed()
        return instance_id

    def start_in(self, session: Session, username: str, process_id: str, business_key: str, data: dict[str, Any],
                 message: tuple[str, dict[str, Any], int | None] | None = None,
                 view: tuple[Actor, list[InstanceView]] | None = None, inline: bool = False,
                 read_clock: bool = False) -> tuple[str, Callable[[], None]]:
        """Start an instance in a transaction the caller opened (message routing picks the
        message in it). Returns its id and what to call once the caller has committed.
        ``read_clock``: the caller's unit of work has not read the clock yet (nor asked the
        time): the lookup of the latest version reads it."""
        if message is not None and message[2] is not None:
            from certflow.engine.messaging import claim

            claim(session, message[2])  # a second drainer stops here
        definition_id = rules.latest_id(session, process_id, read_clock and self.settings.clock_controllable)
        definition = self.definition(session, definition_id)
        if view is not None and not view[0].is_staff:  # anyone else starts only for themselves
            rules.may_start(definition.elements, view[0], process_id)
            data[rules.subject_variable(definition.elements)] = view[0].username
            own_key(view[0].username, business_key)
        if not business_key or len(business_key) > 200:
            raise InvalidInput(Message(N_("a business key of 1 to 200 characters is required")))
        running = session.scalar(select(Instance.id).where(
            Instance.process_id == process_id, Instance.business_key == business_key,
            Instance.status == "running"))
        if running:
            if view is not None and not view[0].is_staff and not rules.own_case(session, view[0], running):
                # Someone else's: their instance's id is not for this person to learn.
                raise Conflict(Message(N_("%(process)s '%(key)s' is already running; choose another case number"),
                                      process=process_id, key=business_key), field="business_key")
            raise Conflict(Message(N_("%(process)s '%(key)s' is already running as instance %(instance)s"),
                                  process=process_id, key=business_key, instance=running))
        advance, published = self.create_instance(session, definition, username, business_key, data, message,
                                                  inline)
        instance, workflow = advance.instance, advance.workflow
        instance_id = instance.id
        if view is not None:
            view[1].append(self._view(session, instance, definition, view[0], workflow, advance.queue))

        advance.published = published

        def committed() -> None:  # as any advance's: counted, cached, its jobs published
            self.after_advance(advance)

        return instance_id, committed

    def create_instance(self, session: Session, definition: LoadedDefinition, username: str, business_key: str,
                        data: dict[str, Any], message: tuple[str, dict[str, Any], int | None] | None = None,
                        inline: bool = False, write_audit: bool = True, inserted: Instance | None = None
                        ) -> tuple[Advance, list[JobMessage]]:
        """Insert a new instance of ``definition`` and run its first advance, in ``session``;
        the caller has checked who starts it and that its business key is free. Returns the
        advance and its jobs (to publish after commit). A batch of starts
        (certflow.engine.messaging) inserts the rows itself (``inserted``: this one's,
        ``new_instance``, left out of the session) and, with ``write_audit=False``, writes
        their saved rows and audit rows itself too."""
        rules.check_start_form(definition, data)
        rules.check_guards(session, self.registry, definition.elements, self.now(), data)
        workflow = self.new_workflow(definition)
        start = workflow.get_tasks(state=TaskState.READY)[0]
        start.data.update(data, business_key=business_key, started_by=username)
        if inserted is not None:
            instance, now = inserted, inserted.created_at
        else:
            now = self.now()
            instance = self.new_instance(definition, username, business_key, data, message, now)
            _insert(session, instance)
        session.autoflush = False  # as in every advance: save() flushes once
        advance = Advance(session, instance, workflow, definition, now, username, inline=inline)
        advance.audit("instance_started", data=data)
        if message is not None:
            self._catch_start_message(advance, *message)
        return advance, self.save(advance, {}, write_audit)

    def new_instance(self, definition: LoadedDefinition, username: str, business_key: str, data: dict[str, Any],
                     message: tuple[str, dict[str, Any], int | None] | None, now: datetime) -> Instance:
        """A new running instance of ``definition``, its row not written yet."""
        return Instance(
            definition_id=definition.id, process_id=definition.process_id, business_key=business_key,
            status="running", state={}, serializer_version=SERIALIZER_VERSION,
            started_by=username, subject=rules.subject(definition.elements, data, message),
            created_at=now, updated_at=now,
        )

    def _catch_start_message(self, adv: Advance, name: str, payload: dict[str, Any], message_id: int | None) -> None:
        from SpiffWorkflow.bpmn.util import BpmnEvent

        from certflow.engine.messaging import _mark

        self.run_engine(adv)
        for task in waiting_message_tasks(adv.workflow):
            if task.task_spec.event_definition.name == name:
                task.data.update(payload)
                adv.workflow.catch(BpmnEvent(task.task_spec.event_definition, payload))
                adv.audit("message_received", str(task.id), task.task_spec.bpmn_id, message=name, payload=payload)
                if message_id is not None:
                    _mark(adv.session, message_id, "started", f"started {adv.instance.id}", adv.now)
                return
        raise Conflict(f"{adv.instance.process_id} does not start on message {name!r}")

    def cancel(self, actor: Actor, instance_id: str, reason: str = "") -> InstanceView:
        rules.staff_only(actor, "cancel an instance")
        with self.advancing(instance_id, actor.username) as adv:
            # Ending someone's case is for the staff who handle cases; any other staff member
            # (a process owner trying out a version) ends only what they started themselves.
            if not sees_case_data(actor) and adv.instance.started_by != actor.username:
                raise Forbidden(Message(N_("only the office, coordinators and admins cancel a case; you may "
                                           "cancel only what you started yourself")))
            if adv.instance.status != "running":
                raise Conflict(Message(N_("instance %(instance)s is %(status)s"), instance=instance_id,
                                      status=adv.instance.status))
            adv.workflow.cancel()
            adv.instance.status, adv.instance.ended_at = "cancelled", adv.now
            adv.audit("instance_cancelled", reason=reason)
        return self.instance(actor, instance_id)

    def instance(self, actor: Actor, instance_id: str) -> InstanceView:
        # The instance's read reads the clock; its row, queue entries and waits are of one moment.
        with self.session(clock=False, snapshot=True) as session:
            row = session.execute(_INSTANCE_CLOCK, {"instance_id": instance_id}).one_or_none()
            if row is None:
                raise NotFound(Message(N_("no instance '%(instance)s'"), instance=instance_id))
            instance: Instance = row[0]
            if self.settings.clock_controllable:
                CLOCK.refreshed(row[1])
            rules.may_see(session, actor, instance)
            return self._view(session, instance, self.definition(session, instance.definition_id), actor)

    def _view(self, session: Session, instance: Instance, definition: Any, actor: Actor,
              workflow: Any = None, entries: list[dict[str, Any]] | None = None) -> InstanceView:
        """``entries``: the instance was just started, and these are the queue entries its save
        wrote (``Advance.queue``): its tasks and subscriptions are known without a read."""
        if entries is not None:
            tasks: Sequence[Any] = [queue.inserted(e) for e in entries]
            waits = [f"{name} ({key})" for name, key in (instance.projected or {}).get("subs") or []]
            if verifying():
                _verify_view(session, instance.id, tasks, waits)
        else:
            tasks = session.scalars(_VIEW_TASKS, {"instance_id": instance.id}).all()
            waits = [f"{s.message_name} ({s.correlation_key})"
                     for s in session.scalars(_VIEW_WAITS, {"instance_id": instance.id})]
        # The instance's data is for the staff who work with the people; others see their own
        # tasks with what those show.
        data = self._current_data(instance, definition, workflow) if sees_case_data(actor) else {}
        if not sees_case_data(actor):
            tasks = [t for t in tasks if t.assignee == actor.username]
        return InstanceView(
            id=instance.id, process_id=instance.process_id, version=definition.version,
            business_key=instance.business_key, status=instance.status,
            has_incident=instance.has_incident, next_due_at=instance.next_due_at,
            created_at=instance.created_at, updated_at=instance.updated_at,
            started_by=instance.started_by, data=data,
            open_tasks=[queue.view(t, definition.forms, self.now(), definition.elements) for t in tasks],
            waiting_for=waits,
        )

    def _current_data(self, instance: Instance, definition: Any, workflow: Any) -> dict[str, Any]:
        """``rules.current_data`` of the instance's workflow. A completed one's is its last
        task's data, read from the saved state's branch to that task (a finished instance is
        not in the live cache, and restoring all of it cost more than the rest of the page)."""
        if workflow is None and instance.status == "completed" and instance.serializer_version == SERIALIZER_VERSION:
            data = last_task_data(instance.state)
            if data is not None:
                if verifying():
                    restored = rules.current_data(self.restore(instance, definition))
                    if data != restored:
                        raise AssertionError("the last task's data differs from the restored workflow's")
                return data
        return rules.current_data(workflow or self.restore(instance, definition))

    def progress(self, actor: Actor, process_id: str | None = None) -> list[CaseProgress]:
        """The actor's own cases (started by or about them), newest first, each with its open
        steps (titles and due dates of everyone's tasks, never their data) and the messages it
        waits for: what "Mijn CMI" shows as "where does my case stand"."""
        with self.session(snapshot=True) as session:
            return overview.progress(session, actor, process_id, self.now())

    def instances(self, actor: Actor, process_id: str | None = None, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        with self.session() as session:
            query = select(Instance.id, Instance.process_id, Instance.business_key, Instance.status,
                           Instance.has_incident, Instance.next_due_at, Instance.created_at,
                           Instance.updated_at, Instance.started_by)
            if not actor.is_staff:
                query = query.where(or_(Instance.started_by == actor.username, Instance.subject == actor.username))
            if process_id:
                query = query.where(Instance.process_id == process_id)
            if status:
                query = query.where(Instance.status == status)
            rows = session.execute(query.order_by(Instance.created_at.desc()).limit(limit)).all()
            return [dict(r._mapping) for r in rows]

    def history(self, actor: Actor, instance_id: str) -> list[dict[str, Any]]:
        with self.session() as session:
            instance = session.get(Instance, instance_id, options=[WITHOUT_STATE])
            if instance is None:
                raise NotFound(Message(N_("no instance '%(instance)s'"), instance=instance_id))
            rules.may_see(session, actor, instance)
            query = select(AuditEvent).where(AuditEvent.instance_id == instance_id)
            if not sees_case_data(actor):  # their own actions only: not another assessor's verdict
                query = query.where(AuditEvent.actor == actor.username)
            rows = session.scalars(query.order_by(AuditEvent.id)).all()
            return [{"at": r.at, "actor": r.actor, "action": r.action, "element_id": r.element_id,
                     "task_id": r.task_id, "detail": r.detail} for r in rows]

    # -- human tasks -------------------------------------------------------------------------
    def inbox(self, actor: Actor, process_id: str | None = None, group: str | None = None,
              overdue: bool | None = None, limit: int = PAGE_SIZE,
              filters: InboxFilter | None = None) -> list[TaskView]:
        """The first page of the inbox (``inbox_page`` pages on)."""
        return self.inbox_page(actor, process_id, group, overdue, limit, filters=filters).tasks

    def inbox_page(self, actor: Actor, process_id: str | None = None, group: str | None = None,
                   overdue: bool | None = None, limit: int = PAGE_SIZE, after: str | None = None,
                   filters: InboxFilter | None = None) -> InboxPage:
        """My tasks and my groups' unassigned ones, due first, a page at a time; ``filters``
        (the inbox page's) narrow them, an explicit argument winning over the same field."""
        if filters is not None:
            process_id = process_id or filters.process_id
            group = group or filters.group
            overdue = overdue if overdue is not None else filters.overdue
        with self.reading() as session:  # one statement (certflow.engine.inbox)
            return queue.inbox(session, self, actor, process_id, group, overdue, limit, after, filters)

    def inbox_choices(self, actor: Actor) -> dict[str, Any]:
        """What the inbox filters offer: the user tasks of the latest deployed versions, and the
        groups the actor may filter on (staff: every lane)."""
        with self.session() as session:
            return overview.inbox_choices(self.latest_elements(session), actor)

    def task(self, actor: Actor, task_id: str) -> TaskView:
        with self.session() as session:
            entry = queue.get(session, task_id)
            queue.may_see(entry, actor)
            definition = self.definition_of(session, entry.instance_id)
            view = queue.view(entry, definition.forms, self.now(), definition.elements)
            return replace(view, personal=assignment.personal(definition, entry))

    def claim(self, actor: Actor, task_id: str) -> TaskView:
        return self._queue_op(actor, task_id, "claimed", queue.claim)

    def unclaim(self, actor: Actor, task_id: str) -> TaskView:
        return self._queue_op(actor, task_id, "unclaimed",
                              lambda s, e, a, now: assignment.unclaim(self, s, e, a, now))

    def assign(self, actor: Actor, task_id: str, assignee: str) -> TaskView:
        return self._queue_op(actor, task_id, "assigned",
                              lambda s, e, a, now: assignment.assign(self, s, e, a, assignee, now))

    def _queue_op(self, actor: Actor, task_id: str, action: str, op: Any) -> TaskView:
        with self.session() as session:
            entry = queue.get(session, task_id, lock=True)
            now = self.now()
            op(session, entry, actor, now)
            session.add(AuditEvent(instance_id=entry.instance_id, task_id=entry.id, element_id=entry.element_id,
                                   actor=actor.username, action=action, detail={"assignee": entry.assignee}, at=now))
            definition = self.definition_of(session, entry.instance_id)
            return queue.view(entry, definition.forms, now, definition.elements)

    def complete(self, actor: Actor, task_id: str, data: dict[str, Any]) -> Completed:
        answer: list[Completed] = []
        with self.advancing(queue.instance_of(task_id), actor.username) as adv:
            entry = queue.row(adv.session, task_id)  # under the instance lock
            queue.may_complete(entry, actor)
            rules.bounded(data, "data")
            schema = adv.definition.forms.get(entry.form or "", rules.ANY_OBJECT)
            rules.validate_form(schema, data, entry.form)
            task = find_task(adv.workflow, task_id)
            if task is None or task.state != TaskState.READY:
                raise Conflict(Message(N_("task %(task)s is no longer open"), task=task_id))
            task.data.update(data)
            task.run()
            adv.audit("task_completed_by_user", task_id, entry.element_id, data=data,
                      due_at=entry.due_at.isoformat() if entry.due_at else None,
                      created_at=entry.created_at.isoformat(), escalation_level=entry.escalation_level)
            adv.on_saved.append(lambda: answer.append(Completed(
                task_id, adv.instance.id, adv.instance.status, _mine(adv, actor))))
        return answer[0]

    # -- messages ----------------------------------------------------------------------------
    def deliver_message(self, actor: Actor, name: str, payload: dict[str, Any] | None = None,
                        correlation: dict[str, Any] | None = None, business_key: str | None = None,
                        ttl: timedelta | None = None) -> list[str]:
        """Route a message to the instance(s) waiting for it on this correlation key. When nobody
        waits: ``NotFound``, or with a ``ttl`` the message is buffered (returns ``[]``) and the
        first instance to wait for it within the ttl receives it (``buffer_message``)."""
        rules.staff_only(actor, "send messages")
        rules.bounded(payload or {}, "payload", rules.MAX_MESSAGE_PAYLOAD)
        if ttl is not None and not timedelta(0) < ttl <= MAX_MESSAGE_TTL:
            raise InvalidInput(f"a message's time to live is up to {MAX_MESSAGE_TTL.days} days", field="time_to_live")
        if correlation and len(correlation) == 1:
            [(variable, value)] = correlation.items()
            key = correlation_key(variable, value)
        elif business_key:
            key = correlation_key(None, business_key)
        else:
            raise InvalidInput("a message needs one correlation value (e.g. invoice_number) or a business key")
        first: Advance | None = None
        # The lookup, and the first target's advance in the same transaction (its lock reads
        # the clock); whether that instance still waits is checked under the lock (``_catch``).
        with self.session(clock=False) as session:
            targets = session.connection().execute(_WAITING, {"name": name, "key": key}).scalars().all()
            if targets:
                with self.advance_in(session, targets[0], actor.username) as first:
                    self._catch(first, name, key, payload or {})
        if first is not None:
            self.after_advance(first)
        if not targets and ttl is not None:
            self.buffer_message(name, key, payload or {}, ttl, actor.username)
            return []
        if not targets:
            raise NotFound(f"no instance is waiting for message {name!r} with {key}")
        for instance_id in targets[1:]:
            with self.advancing(instance_id, actor.username) as adv:
                self._catch(adv, name, key, payload or {})
        return list(targets)

    def _catch(self, adv: Advance, name: str, key: str, payload: dict[str, Any]) -> None:
        from SpiffWorkflow.bpmn.util import BpmnEvent

        for task in waiting_message_tasks(adv.workflow):
            definition = task.task_spec.event_definition
            variable = queue.correlation_variable(task.task_spec)
            value = task.data.get(variable) if variable else adv.instance.business_key
            if definition.name == name and correlation_key(variable, value) == key:
                if getattr(definition, "message_var", None) is None:
                    task.data.update(payload)
                adv.workflow.catch(BpmnEvent(definition, payload))
                adv.audit("message_received", str(task.id), task.task_spec.bpmn_id, message=name, payload=payload)
                return
        raise Conflict(f"instance {adv.instance.id} stopped waiting for {name!r}")


def _running_key_taken(exc: IntegrityError) -> bool:
    """``exc`` is the one-running-instance-per-business-key index's (PostgreSQL names the
    index, SQLite its columns)."""
    text = str(exc.orig)
    return "uq_instances_running_key" in text or "instances.process_id, instances.business_key" in text


def _insert(session: Session, instance: Instance) -> None:
    """Write a new instance's row with one Core INSERT and make the object the session's
    persistent copy of it, as a flush would (with the defaults a flush applies), without the
    unit of work's cost for one row. Every column is set on the object first: one left unset
    would be expired, and read back by its first use."""
    instance.id, instance.version, instance.has_incident = new_id(), 1, False
    row = {column.key: getattr(instance, column.key) for column in _INSTANCES.columns}
    try:
        session.connection().execute(_INSERT_INSTANCE, row)
    except IntegrityError as exc:
        # Two starts of one business key at once (a double click on "send"): both found none
        # running, and this insert waited for the other's commit. The caller's check would
        # have refused it a moment later, so it is refused as that check refuses it.
        if not _running_key_taken(exc):
            raise
        raise Conflict(Message(N_("%(process)s '%(key)s' is already running; choose another case number"),
                               process=instance.process_id, key=instance.business_key),
                       field="business_key") from None
    for key, value in row.items():
        if key not in instance.__dict__:
            set_committed_value(instance, key, value)
    make_transient_to_detached(instance)
    session.add(instance)


def _mine(adv: Advance, actor: Actor) -> list[TaskView]:
    """What in the advanced instance the actor can pick up next: from the entries its save
    wrote when it wrote them all, else read (``queue.mine``)."""
    forms, elements = adv.definition.forms, adv.definition.elements
    if adv.queue is None:
        return queue.mine(adv.session, actor, adv.instance.id, forms, adv.now, elements)
    known = queue.mine_of(adv.queue, actor, forms, adv.now, elements)
    if verifying():
        read = queue.mine(adv.session, actor, adv.instance.id, forms, adv.now, elements)
        if sorted(known, key=_by_id) != sorted(read, key=_by_id):
            raise AssertionError(f"the tasks a save wrote {known} differ from those read {read}")
    return known


def _by_id(task: TaskView) -> str:
    return task.id


def _verify_view(session: Session, instance_id: str, tasks: Sequence[Any], waits: list[str]) -> None:
    """``CERTFLOW_VERIFY_STATE``: a started instance's view from its save equals the tables'."""
    read = session.scalars(_VIEW_TASKS, {"instance_id": instance_id}).all()
    columns = [c.key for c in HumanTask.__table__.columns]
    known_rows = sorted([getattr(t, c) for c in columns] for t in tasks)
    read_rows = sorted([getattr(t, c) for c in columns] for t in read)
    read_waits = sorted(f"{s.message_name} ({s.correlation_key})"
                        for s in session.scalars(_VIEW_WAITS, {"instance_id": instance_id}))
    if known_rows != read_rows or sorted(waits) != read_waits:
        raise AssertionError("a started instance's tasks or subscriptions differ from those read")


__all__ = ["Actor", "Engine", "state_to_dict"]
