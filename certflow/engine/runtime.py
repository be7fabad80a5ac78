"""One advance of one instance = one transaction.

``Runtime.advancing`` locks the instance row, restores the workflow against its cached spec,
lets the caller move it, runs the engine until it waits, saves the state together with every
projection and audit event, commits, and only then publishes the new jobs. A failure anywhere
rolls all of it back: nothing is half-advanced and nothing reaches the broker.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from time import perf_counter
from typing import Any, cast

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Select, Table, Update, bindparam, insert, inspect, select, update
from sqlalchemy.orm import Session, SessionTransaction, object_session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from certflow.clock import CLOCK, OFFSET_COLUMN
from certflow.observability.context import bind
from certflow.observability.metrics import live_workflow, observe_advance
from certflow.engine import rules
from certflow.engine.dto import JobMessage
from certflow.engine.errors import InvalidInput, NotFound
from certflow.engine.projections import project, table_of
from certflow.engine.sandbox import SandboxScriptEngine
from certflow.registry import HandlerRegistry
from certflow.engine.spiff import (SERIALIZER_VERSION, TaskStates, all_tasks, do_engine_steps, is_completed,
                                  restore_state, spec_from_dict, state_json, state_to_dict, walk_faster)
from certflow.localtime import LOCAL_TZ
from certflow.settings import Settings
from certflow.store.db import READ_ONLY, one_snapshot, transaction
from certflow.store.models import WITHOUT_STATE, AuditEvent, Definition, Instance, Message

log = logging.getLogger(__name__)
# Built once: an advance's audit rows in one executemany on the connection (no ORM path).
AUDIT_INSERT = insert(table_of(AuditEvent))
MESSAGE_INSERT = insert(table_of(Message))

Publisher = Callable[[list[JobMessage]], None]
MAX_ENGINE_ROUNDS = 100
LIVE_WORKFLOWS = 512


@dataclass(frozen=True)
class LoadedDefinition:
    id: int
    process_id: str
    version: int
    spec: Any
    subprocess_specs: dict[str, Any]
    forms: dict[str, Any]
    elements: dict[str, Any]


@dataclass
class Advance:
    session: Session
    instance: Instance
    workflow: BpmnWorkflow
    definition: LoadedDefinition
    now: datetime
    actor: str
    # Audit rows as plain dicts: written with one executemany per advance (the ORM would
    # insert them one by one to learn ids nobody needs).
    events: list[dict[str, Any]] = field(default_factory=list)
    thrown: int = 0
    # Task states by id as this advance saved them: the next advance's "before" on a cache hit.
    states: TaskStates = field(default_factory=dict)
    # A worker's advance: database-only service tasks run inside it (certflow.engine.inline).
    inline: bool = False
    # Run after the save, before commit, in the same transaction (answers built from it).
    on_saved: list[Callable[[], None]] = field(default_factory=list)
    # Jobs the save wrote, published after commit.
    published: list[JobMessage] = field(default_factory=list)
    # Outbox jobs the save queued (their tasks completed; certflow.engine.outbox).
    outbox: list[JobMessage] = field(default_factory=list)
    # (task id, attempt) of the jobs this advance finished (their rows are final already).
    closed_jobs: set[tuple[str, int]] = field(default_factory=set)
    # The save opened a message subscription: a buffered message may now be delivered.
    subscribed: bool = False
    # The instance's queue entries as the save left them, when it wrote them all
    # (``Projected.queue``); None: not known without a read.
    queue: list[dict[str, Any]] | None = None
    # When it began (perf_counter), for the advance-duration metric.
    started: float = field(default_factory=perf_counter)
    # A savepoint taken just after a handler with outside effects succeeded in this advance,
    # and its result: if what follows fails, the advance rolls back to it (see EffectKept).
    kept_effect: SessionTransaction | None = None
    kept_result: dict[str, Any] = field(default_factory=dict)

    def keep_effect(self, result: dict[str, Any]) -> None:
        """Mark the point after an outside effect (an e-mail sent): a failure from here on
        rolls the advance back to it, not past it (``Runtime.advance_in``)."""
        self.kept_effect, self.kept_result = self.session.begin_nested(), result

    def audit(self, action: str, task_id: str | None = None, element_id: str | None = None, **detail: Any) -> None:
        self.events.append(dict(
            instance_id=self.instance.id, task_id=task_id, element_id=element_id,
            actor=self.actor, action=action, detail=detail, at=self.now,
        ))


@dataclass(frozen=True)
class InstanceOf:
    """The instance that a row of ``table`` (a queue entry, a job: tables with ``id`` and
    ``instance_id`` columns) belongs to, found by the lock statement itself: one statement
    where a read before the lock and the lock were two. The row's instance never changes, so
    reading it before the lock is safe; the row itself may have gone meanwhile (a task
    completed, a job run), so the caller reads it again under the lock. ``missing``: raised
    when there is no such row."""

    table: Table
    row_id: Any
    missing: Exception


# Built once (statement construction and its cache key cost more than the lookup itself).
_LOCK = (select(Instance).options(WITHOUT_STATE)
         .where(Instance.id == bindparam("instance_id")).with_for_update())
# The same, reading the shared clock's offset in the same statement (a controllable clock).
_LOCK_CLOCK = _LOCK.add_columns(OFFSET_COLUMN)
# The same again for InstanceOf, by table name and read_clock, built on first use.
_LOCK_OF: dict[tuple[str, bool], Select[Any]] = {}


def _lock_of(table: Table, read_clock: bool) -> Select[Any]:
    statement = _LOCK_OF.get((table.name, read_clock))
    if statement is None:
        owner = select(table.c.instance_id).where(table.c.id == bindparam("row_id")).scalar_subquery()
        # FOR UPDATE locks the instances row only: a subquery's rows are not locked.
        statement = select(Instance).options(WITHOUT_STATE).where(Instance.id == owner).with_for_update()
        if read_clock:
            statement = statement.add_columns(OFFSET_COLUMN)
        _LOCK_OF[(table.name, read_clock)] = statement
    return statement


def lock_instance(session: Session, instance_id: str | InstanceOf, read_clock: bool = False) -> Instance:
    """The locking strategy for an advance.

    PostgreSQL: ``SELECT … FOR UPDATE`` on the instance row, held until commit; a second
    advance of the same instance waits for the first, then sees its committed state.
    SQLite: every write transaction starts with ``BEGIN IMMEDIATE`` (store/db.py), which takes
    the database write lock up front, so advances are serialized database-wide.
    Both are backed by the optimistic ``version`` column, so a writer that bypassed the lock
    still cannot overwrite a newer state: its UPDATE matches no row and fails.
    Unsafe if an instance is read in one transaction and saved in another.

    The state column is deferred: when the live workflow is cached it is never read (nor
    decoded); on a miss it is loaded under the lock already held (``_stored_state``).

    ``read_clock``: refresh the controllable clock from this statement (its offset column), so
    the advance's unit of work needs no read of its own; in the advance's snapshot, after
    anything it read before the lock.
    """
    if isinstance(instance_id, InstanceOf):
        statement, params = _lock_of(instance_id.table, read_clock), {"row_id": instance_id.row_id}
    else:
        statement, params = _LOCK_CLOCK if read_clock else _LOCK, {"instance_id": instance_id}
    row = session.execute(statement, params).one_or_none()
    if row is None:
        if isinstance(instance_id, InstanceOf):
            raise instance_id.missing
        raise NotFound(f"no instance {instance_id!r}")
    if read_clock:
        CLOCK.refreshed(row[1])
    instance: Instance = row[0]
    return instance


_STATE = (select(table_of(Instance).c.state)
          .where(table_of(Instance).c.id == bindparam("instance_id")))


def _stored_state(instance: Instance) -> dict[str, Any]:
    """The instance's state. When the lock left it unloaded (deferred), one Core SELECT under
    the lock already held: the ORM's load of a deferred column costs twice the CPU."""
    if "state" in instance.__dict__:
        return instance.state
    session = object_session(instance)
    if session is None:
        return instance.state  # detached: the ORM raises as it would have
    state: dict[str, Any] = session.connection().execute(_STATE, {"instance_id": instance.id}).scalar_one()
    set_committed_value(instance, "state", state)
    return state


class EffectKept(Exception):
    """An advance failed after a handler with outside effects had succeeded in it. The advance
    was rolled back to just after the handler, so the effect's own record (the e-mail row,
    keyed by the job) commits with the caller's transaction and a retry does not redo it;
    ``result`` is the handler's, to deliver in an advance of its own."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("the advance after an outside effect failed")
        self.result = result


_DEFINITION_ID = select(Instance.definition_id).where(Instance.id == bindparam("instance_id"))


class Runtime:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], publisher: Publisher | None = None,
                 registry: HandlerRegistry | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.publisher = publisher
        # Handlers, guards and deploy checks, injected by the composition root (bootstrap);
        # the engine never imports handlers/.
        self.registry = registry if registry is not None else HandlerRegistry()
        # Diagrams think in Dutch calendar days: today() just after midnight is the new day.
        self.script_engine = SandboxScriptEngine(now=lambda: CLOCK.now().astimezone(LOCAL_TZ))
        self._definitions: dict[int, LoadedDefinition] = {}
        self._elements: dict[int, dict[str, Any]] = {}
        # Workflows this process saved last, by instance id, with the version they were saved
        # as and their task states. The version is the optimistic lock's, so a hit is exactly
        # the stored state; any other writer bumps it and the entry is simply not used.
        self._live: OrderedDict[str, tuple[int, BpmnWorkflow, TaskStates]] = OrderedDict()
        # How often an advance found its workflow there (bench/engine.py reports the rate).
        self.live_hits = 0
        self.live_misses = 0

    def now(self) -> datetime:
        return CLOCK.now()

    # -- definitions -----------------------------------------------------------------------
    def definition(self, session: Session, definition_id: int) -> LoadedDefinition:
        cached = self._definitions.get(definition_id)
        if cached is None:
            row = session.get(Definition, definition_id)
            if row is None:
                raise NotFound(f"no definition {definition_id}")
            spec, subs = spec_from_dict(row.spec)
            cached = LoadedDefinition(row.id, row.process_id, row.version, spec, subs,
                                      row.forms, row.elements)
            self._definitions[definition_id] = cached
        return cached

    def definition_of(self, session: Session, instance_id: str) -> LoadedDefinition:
        """The version ``instance_id`` runs (one column read; its definition is cached)."""
        definition_id = session.connection().execute(_DEFINITION_ID, {"instance_id": instance_id}).scalar()
        if definition_id is None:
            raise NotFound(f"no instance {instance_id}")
        return self.definition(session, definition_id)

    def latest_elements(self, session: Session) -> dict[str, tuple[int, dict[str, Any]]]:
        """Each process's latest version (its definition id) and its elements, by process id.
        Only the ids are read each time: a version never changes, so its elements are kept
        (without the spec ``definition`` loads, which these callers do not need)."""
        latest = session.execute(rules.LATEST_IDS).all()
        missing = [definition_id for definition_id, _ in latest if definition_id not in self._elements]
        if missing:
            self._elements.update(session.execute(rules.ELEMENTS_OF, {"ids": missing}).tuples().all())
        return {process_id: (definition_id, self._elements[definition_id]) for definition_id, process_id in latest}

    def new_workflow(self, definition: LoadedDefinition) -> BpmnWorkflow:
        return walk_faster(BpmnWorkflow(definition.spec, definition.subprocess_specs, script_engine=self.script_engine))

    def restore(self, instance: Instance, definition: LoadedDefinition) -> BpmnWorkflow:
        return self.restore_with_states(instance, definition)[0]

    def restore_with_states(self, instance: Instance, definition: LoadedDefinition
                            ) -> tuple[BpmnWorkflow, TaskStates]:
        """The instance's workflow and its task states (``task_states`` of its tree), from one
        pass over the stored state."""
        state = _stored_state(instance)
        if instance.serializer_version != SERIALIZER_VERSION:
            from certflow.engine.migrations import migrate_state

            # Not written back here: the next save stores it with the current version.
            state = migrate_state(state, instance.serializer_version, definition.spec,
                                  definition.subprocess_specs)
        return restore_state(state, definition.spec, definition.subprocess_specs, self.script_engine)

    # -- the advance -------------------------------------------------------------------------
    @contextmanager
    def advancing(self, instance_id: str | InstanceOf, actor: str, inline: bool = False) -> Iterator[Advance]:
        """``instance_id`` may be the instance of a row (``InstanceOf``: of a task, say), found
        by the lock statement itself."""
        with self.session(clock=False) as session:  # the lock reads the clock
            with self.advance_in(session, instance_id, actor, inline) as advance:
                yield advance
        self.after_advance(advance)

    @contextmanager
    def advance_in(self, session: Session, instance_id: str | InstanceOf | Instance, actor: str,
                   inline: bool = False, started: float | None = None) -> Iterator[Advance]:
        """An advance inside a transaction the caller opened. The caller commits, then calls
        ``after_advance``: nothing is published before. ``instance_id`` may be an ``Instance``
        the caller locked already (``lock_instance``, in ``session``), when what it read under
        that lock decides whether to advance at all (a job's run: a duplicate advances
        nothing); ``started``: when it began."""
        started = perf_counter() if started is None else started
        # Autoflush would flush before every query of the advance (about 9 each); save()
        # flushes once, before the projections read the tables.
        session.autoflush = False
        if isinstance(instance_id, Instance):
            instance = instance_id
        else:
            instance = lock_instance(session, instance_id, read_clock=self.settings.clock_controllable)
        advance, before = self.open_advance(session, instance, actor)
        advance.inline = inline
        advance.started = started
        bind(instance_id=instance.id)
        try:
            yield advance
            advance.published = self.save(advance, before)
            for hook in advance.on_saved:
                hook()
        except Exception as exc:
            kept = advance.kept_effect
            if kept is None or not kept.is_active:
                raise
            kept.rollback()
            raise EffectKept(advance.kept_result) from exc
        if advance.kept_effect is not None and advance.kept_effect.is_active:
            advance.kept_effect.commit()

    def after_advance(self, advance: Advance) -> None:
        """After the advance's commit: cache the workflow, publish its jobs."""
        observe_advance(perf_counter() - advance.started)
        self._checkin(advance.instance, advance.workflow, advance.states)
        self.after_commit(advance, advance.published)

    def open_advance(self, session: Session, instance: Instance, actor: str
                     ) -> tuple[Advance, TaskStates]:
        """The advance of an instance already locked in ``session``, and its task states
        before it moves."""
        definition = self.definition(session, instance.definition_id)
        workflow, before = self._checkout(instance, definition)
        return Advance(session, instance, workflow, definition, CLOCK.now(), actor), before

    def _checkout(self, instance: Instance, definition: LoadedDefinition
                  ) -> tuple[BpmnWorkflow, TaskStates]:
        # Taken out of the cache: an advance that fails half-way must not leave it behind.
        cached = self._live.pop(instance.id, None)
        if cached is not None and cached[0] == instance.version:
            self.live_hits += 1
            live_workflow(True)
            return cached[1], cached[2]
        self.live_misses += 1
        live_workflow(False)
        return self.restore_with_states(instance, definition)

    def _checkin(self, instance: Instance, workflow: BpmnWorkflow, states: TaskStates) -> None:
        if instance.status != "running":
            return
        self._live[instance.id] = (instance.version, workflow, states)
        while len(self._live) > LIVE_WORKFLOWS:
            self._live.popitem(last=False)

    def after_commit(self, advance: Advance, published: list[JobMessage]) -> None:
        self.publish(published)
        if advance.thrown:
            self.drain_messages(inline=advance.inline)  # a worker's advance: routed as by a worker

    def drain_messages(self, limit: int = 10_000, inline: bool = False) -> int:  # messaging.py; for the type
        return 0

    def run_inline_services(self, advance: Advance, tasks: list[Task]) -> list[Task]:  # inline.py
        return tasks

    def queue_outbox_tasks(self, advance: Advance, tasks: list[Task]) -> bool:  # outbox.py
        return False

    @contextmanager
    def session(self, clock: bool = True, snapshot: bool = False) -> Iterator[Session]:
        """A unit of work. ``clock=False``: one that advances an instance (``advance_in``) before
        it asks the time; the lock statement refreshes the clock, so no read here.
        ``snapshot``: a view built from several reads, all of one moment (``one_snapshot``)."""
        with transaction(self.sessions) as session:
            if snapshot:
                one_snapshot(session)
            if clock and self.settings.clock_controllable:  # a fixed clock needs no read
                CLOCK.refresh(session)
            yield session

    @contextmanager
    def reading(self, clock: bool = True) -> Iterator[Session]:
        """A unit of work that only reads, each statement on its own snapshot: on PostgreSQL
        no BEGIN and COMMIT round trips (the connection is back to transactions when it
        returns to the pool); on SQLite no write lock, so it is not queued behind an advance. For reads of one statement, or of rows that never change
        (definitions); never for a write or for two reads that must agree. ``clock=False``:
        the caller knows its moment already, so no read of the clock."""
        with transaction(self.sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            else:  # SQLite: a snapshot, without waiting for (or holding up) a writer
                session.connection(execution_options=cast(Any, {READ_ONLY: True}))
            if clock and self.settings.clock_controllable:  # a fixed clock needs no read
                CLOCK.refresh(session)
            yield session

    def run_engine(self, advance: Advance) -> list[Task]:
        """Run until only people, messages, timers or workers can move the instance. Returns
        the one walk of the task tree that audit and projections then read."""
        workflow = advance.workflow
        try:
            for _ in range(MAX_ENGINE_ROUNDS):
                do_engine_steps(workflow)
                tasks = all_tasks(workflow)
                if not any(t.state == TaskState.READY and not t.task_spec.manual for t in tasks):
                    break
        except SpiffWorkflowException as exc:
            element = getattr(getattr(exc, "task_spec", None), "bpmn_id", None)
            raise InvalidInput(f"the diagram failed at {element or 'an element'}: {exc}",
                               element=element) from exc
        return tasks

    def save(self, advance: Advance, before: TaskStates, write_audit: bool = True) -> list[JobMessage]:
        """Run the engine, then write the state with everything derived from it. With
        ``write_audit=False`` the caller is a batch that writes ``advance.events`` and the
        instance rows itself, once for all (the row's new values are left on the object)."""
        tasks = self.run_engine(advance)
        for _ in range(MAX_ENGINE_ROUNDS):
            if advance.inline:
                tasks = self.run_inline_services(advance, tasks)
            if not self.queue_outbox_tasks(advance, tasks):
                break
            tasks = self.run_engine(advance)  # the outbox tasks completed: on to what follows
        instance, workflow, now = advance.instance, advance.workflow, advance.now
        advance.states = task_states(tasks)
        _audit_transitions(advance, before)
        _store_thrown_messages(advance)
        advance.session.flush()  # the one flush: the projections below read with Core
        projected = project(advance.session, instance, tasks, workflow, now, self.settings, self.evaluate,
                            advance.definition.elements, advance.closed_jobs)
        advance.subscribed, advance.queue = projected.subscribed, projected.queue
        instance.state = state_to_dict(workflow)
        instance.serializer_version = SERIALIZER_VERSION
        instance.updated_at = now
        if is_completed(workflow, tasks) and instance.status == "running":
            instance.status, instance.ended_at = "completed", now
            advance.audit("instance_completed")
        if write_audit:
            write_instance(advance.session, instance, state_json(workflow, instance.state))
        if advance.events and write_audit:
            advance.session.connection().execute(AUDIT_INSERT, advance.events)
        return [*advance.outbox, *projected.publish] if advance.outbox else projected.publish

    def evaluate(self, task: Any, expression: str) -> Any:
        return self.script_engine.evaluate(task, expression)

    def publish(self, jobs: list[JobMessage]) -> None:
        """After commit. A failure here loses nothing: the sweep re-publishes unclaimed jobs."""
        if not jobs or self.publisher is None:
            return
        try:
            self.publisher(jobs)
        except Exception:  # the broker is down: the sweep will pick these up
            log.exception("publishing %d job(s) failed; the sweep will retry", len(jobs))


_SAVED = ("state", "serializer_version", "next_due_at", "projected", "status", "ended_at", "updated_at",
          "has_incident")
# Written only when the save changed them: SQLite rewrites an index entry for every column set,
# changed or not, and status and next_due_at are in four of the row's indexes (two to four
# more pages to the write-ahead log per advance, which almost never changes them).
_IF_CHANGED = frozenset({"serializer_version", "next_due_at", "status", "ended_at", "has_incident"})
_INSTANCES = table_of(Instance)
# By the columns written, built on first use (at most 2^5 of them).
_SAVES: dict[tuple[str, ...], Update] = {}


def _save_statement(columns: tuple[str, ...]) -> Update:
    statement = _SAVES.get(columns)
    if statement is None:
        statement = (update(_INSTANCES)
                     .where(_INSTANCES.c.id == bindparam("b_id"), _INSTANCES.c.version == bindparam("b_version"))
                     .values(version=bindparam("b_new_version"),
                             **{c: bindparam(c, type_=_INSTANCES.c[c].type) for c in columns}))
        _SAVES[columns] = statement
    return statement


def _differs(old: Any, new: Any) -> bool:
    """Whether a column's value changed; a datetime read back from SQLite is naive UTC."""
    if isinstance(old, datetime) and isinstance(new, datetime):
        return _utc(old) != _utc(new)
    return bool(old != new)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def write_instance(session: Session, instance: Instance, state_text: str | None = None) -> None:
    """Write a saved instance's row with one Core UPDATE, only if it still has the version it
    was read at (the ORM's optimistic lock, kept: another writer's save makes this one fail),
    and tell the session the object is clean, so commit writes nothing more. Cheaper than the
    unit of work's flush, which an advance would otherwise pay once per save. ``state_text``:
    the state already encoded (``state_json``), written instead of encoding it again.

    The columns in ``_IF_CHANGED`` are written only if they differ from the values the row
    was read with (the session's record of them): the version check makes those the row's
    values still."""
    values = {c: getattr(instance, c) for c in _SAVED}
    version = instance.version
    state = inspect(instance)
    old = state.committed_state
    columns = tuple(c for c in _SAVED if c not in _IF_CHANGED or (c in old and _differs(old[c], values[c])))
    written = {c: values[c] for c in columns}
    if state_text is not None:
        written["state"] = state_text
    result = session.connection().execute(_save_statement(columns), {"b_id": instance.id, "b_version": version,
                                                                    "b_new_version": version + 1, **written})
    if result.rowcount != 1:
        raise StaleDataError(f"instance {instance.id} changed since version {version} was read")
    for column, value in values.items():
        set_committed_value(instance, column, value)
    set_committed_value(instance, "version", version + 1)
    # Setting the row's attributes left the object flagged "modified" with nothing left to
    # write: the commit would run a whole (empty) flush for it. Clear the flag, but only when
    # no other attribute is pending (that one the commit's flush must still write).
    if not state.committed_state:
        state._commit_all(state.dict, session.identity_map)


def _store_thrown_messages(advance: Advance) -> None:
    """Messages the diagram threw that nothing inside it caught leave through the outbox
    (one Core executemany: nothing reads them back in the advance, so no ORM objects)."""
    rows = []
    for event in advance.workflow.get_events():
        definition = event.event_definition
        if not isinstance(definition, MessageEventDefinition):
            continue
        payload = event.payload if isinstance(event.payload, dict) else {"value": event.payload}
        rows.append(dict(name=definition.name, payload=payload, status="pending",
                         source_instance_id=advance.instance.id, created_at=advance.now))
        advance.audit("message_sent", message=definition.name, payload=payload)
    if rows:
        advance.session.connection().execute(MESSAGE_INSERT, rows)
        advance.thrown += len(rows)


def task_states(tasks: list[Task]) -> TaskStates:
    return {
        t.id: (t.state, t.task_spec.bpmn_id)
        for t in tasks if getattr(t.task_spec, "bpmn_id", None)
    }


def _audit_transitions(advance: Advance, before: TaskStates) -> None:
    for tid, (state, element) in advance.states.items():
        old = before.get(tid, (None, element))[0]
        if old != state and state not in (TaskState.FUTURE, TaskState.LIKELY, TaskState.MAYBE):
            advance.audit(TaskState.get_name(state).lower(), str(tid), element)
