"""Runtime tables: definitions, instances and the projections derived from their state.

The engine state in ``instances.state`` is the truth. ``human_tasks``, ``jobs`` (the outbox),
``subscriptions`` and ``instances.next_due_at`` are projections rewritten from that state on
every save (see certflow.engine.projections), so queries never deserialize an instance.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false, text, true,
)
from sqlalchemy import column as sa_column
from sqlalchemy.orm import Mapped, defer, mapped_column, relationship

from certflow.store.base import Base, new_id


class Definition(Base):
    """One deployed version of one process. Immutable once written. The same content may come
    again under a newer version: a process owner going back to an earlier diagram, or the files
    deployed after a studio deploy (certflow.engine.deploy.store_bundle)."""

    __tablename__ = "definitions"
    __table_args__ = (
        UniqueConstraint("process_id", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(300))
    content_hash: Mapped[str] = mapped_column(String(64))
    # The source files as deployed ({relative path: text}), for the modeler and for audit.
    sources: Mapped[dict[str, Any]]
    # The serialized spec (SpiffWorkflow's dict form), stored once per version.
    spec: Mapped[dict[str, Any]]
    # JSON Schemas of the user-task forms, by form file name.
    forms: Mapped[dict[str, Any]]
    # Per-element metadata the runtime needs without the engine: lanes, operators, due rules.
    elements: Mapped[dict[str, Any]]
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str] = mapped_column(String(100))


class SharedTable(Base):
    """A deployed version of a table several processes share (fees.dmn, vat.dmn). Invoices
    are priced from the latest deployed version, so changing a fee is a deploy."""

    __tablename__ = "shared_tables"
    __table_args__ = (UniqueConstraint("name", "version"), UniqueConstraint("name", "content_hash"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str] = mapped_column(String(100))


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_due", "next_due_at"),
        # The monitor's list, newest first, read off an index and stopped after a page: all
        # instances, or those of one status or one process (certflow/engine/monitor.py).
        Index("ix_instances_created", "created_at", "id"),
        Index("ix_instances_status_created", "status", "created_at", "id"),
        Index("ix_instances_process_created", "process_id", "created_at", "id"),
        # One running instance per process and business key, whatever races to start one.
        Index("uq_instances_running_key", "process_id", "business_key", unique=True,
              postgresql_where=text("status = 'running'"), sqlite_where=text("status = 'running'")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    definition_id: Mapped[int] = mapped_column(ForeignKey("definitions.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    business_key: Mapped[str] = mapped_column(String(200), index=True)
    # running | completed | cancelled
    status: Mapped[str] = mapped_column(String(20), index=True)
    state: Mapped[dict[str, Any]]
    serializer_version: Mapped[str] = mapped_column(String(20))
    # Optimistic version: bumped on every save; a save that finds another version fails.
    version: Mapped[int] = mapped_column(Integer, default=1)
    next_due_at: Mapped[datetime | None]
    has_incident: Mapped[bool] = mapped_column(default=False)
    # What the last save projected (ready task ids, waiting jobs, subscriptions): a save that
    # projects the same leaves those tables alone.
    projected: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    __mapper_args__ = {"version_id_col": version}
    started_by: Mapped[str] = mapped_column(String(100))
    # The person the instance is about (the candidate, the customer): they may follow it,
    # whoever started it (the office may start an application on someone's behalf).
    subject: Mapped[str | None] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    # Loaded only on a spec-cache miss: the definition row is large and immutable.
    definition: Mapped[Definition] = relationship(lazy="raise")


# For a read of an instance's particulars (who, what, where it stands) and not its run: the
# state, most of the row's bytes and all of its decoding, stays unread.
WITHOUT_STATE = defer(Instance.state)


class HumanTask(Base):
    """A ready user task in the queue. Claims survive re-projection of the same task id."""

    __tablename__ = "human_tasks"
    # Each index serves one branch of the inbox query in queue order (certflow/engine/inbox.py):
    # a page is read straight off the index at any number of open tasks.
    __table_args__ = (
        Index("ix_human_tasks_assignee_queue", "assignee", "due_at", sa_column("priority").desc(), "created_at", "id"),
        Index("ix_human_tasks_group_queue", "candidate_group", "due_at", sa_column("priority").desc(), "created_at", "id"),
        # Unassigned group work: what most of the inbox is, and what a claim removes from it.
        Index("ix_human_tasks_unassigned_queue", "candidate_group", "due_at", sa_column("priority").desc(), "created_at",
              "id", postgresql_where=text("assignee IS NULL"), sqlite_where=text("assignee IS NULL")),
        # The escalation sweep reads only rows with a step still to do, in due order: the
        # index holds just those, so its cost does not grow with the number of open tasks.
        Index("ix_human_tasks_next_escalation", "next_escalation_at",
              postgresql_where=text("next_escalation_at IS NOT NULL"),
              sqlite_where=text("next_escalation_at IS NOT NULL")),
        Index("ix_human_tasks_escalated_to", "escalated_to", "escalated_at",
              postgresql_where=text("escalated_to IS NOT NULL"),
              sqlite_where=text("escalated_to IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the engine task id
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    process_id: Mapped[str] = mapped_column(String(200))
    business_key: Mapped[str] = mapped_column(String(200))
    element_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    candidate_group: Mapped[str | None] = mapped_column(String(100))
    assignee: Mapped[str | None] = mapped_column(String(100))
    form: Mapped[str | None] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer, default=50)
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    # What the assignee is shown: the task data named by the task's `show` property. The
    # rest of the instance's data stays with staff (an assessor never sees the other verdict).
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Escalation (certflow.engine.policies): how many of the policy's steps (reminder,
    # escalation, second level) are done, when the next one is due (NULL: none left), and to
    # which group the task is escalated now (its escalation inbox) since when.
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_escalation_at: Mapped[datetime | None]
    escalated_to: Mapped[str | None] = mapped_column(String(100))
    escalated_at: Mapped[datetime | None]


class Job(Base):
    """The transactional outbox: one row per attempt of one service task."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_available", "status", "available_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # instance:task:attempt — the handler's side effects are keyed by it.
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))
    operator: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]]
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    max_attempts: Mapped[int] = mapped_column(Integer)
    # pending (written, not yet published) | published | done | failed | stale
    status: Mapped[str] = mapped_column(String(20))
    available_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    # The HTTP request whose advance wrote this job (or the job before it in the chain), so one
    # request can be followed through the worker's log lines.
    request_id: Mapped[str | None] = mapped_column(String(64))
    # An outbox job (a handler declared ``effects="outbox"``, certflow.engine.outbox): its task
    # completed when the job was queued, so running it advances no instance.
    detached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(200))
    operator: Mapped[str] = mapped_column(String(200))
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    # open | retried | skipped
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))


class Subscription(Base):
    """A waiting message catch event: which message, correlated on which key."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_route", "message_name", "correlation_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    message_name: Mapped[str] = mapped_column(String(200))
    correlation_key: Mapped[str] = mapped_column(String(400))


class Message(Base):
    """A message on its way to a process: thrown by a diagram and not caught inside it, or
    emitted by a handler (a fan-out). Routed after commit to the instance waiting for it, or
    to a process whose start event catches it; kept with the outcome."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_status_id", "status", "id"),
        Index("ix_messages_buffered", "name", "correlation_key", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Set when the sender may send twice (a retried handler): the second is not stored.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    source_instance_id: Mapped[str | None] = mapped_column(String(32))
    # pending | delivered | started | unrouted | failed; buffered | expired (a message published
    # before anyone waits, kept until expires_at for the subscription that will want it)
    status: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    correlation_key: Mapped[str | None] = mapped_column(String(400))
    expires_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only: who did what to which instance and task, and when."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(32), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]]
    at: Mapped[datetime] = mapped_column(index=True)


class User(Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # Unique: it is what a person signs in with.
    email: Mapped[str] = mapped_column(String(200), unique=True)
    language: Mapped[str] = mapped_column(String(5), default="nl")
    # {"street", "postal_code", "city", "country"}; invoices refuse a customer without one.
    address: Mapped[dict[str, Any]] = mapped_column(default=dict)
    newsletter_opt_out: Mapped[bool] = mapped_column(default=False)
    is_staff: Mapped[bool] = mapped_column(default=False)
    # The person's roles (candidate, office, mentor, ...); also the candidate groups of tasks.
    groups: Mapped[list[Any]]
    created_at: Mapped[datetime]
    # argon2id hash; None for an account that cannot sign in with a password (system, scripts).
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    date_of_birth: Mapped[date | None] = mapped_column(Date, default=None)
    # A deactivated account keeps its records but cannot sign in or use its API tokens.
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Who is invoiced: "person" (plain EN 16931 e-invoice, by e-mail) or "organisation" (a
    # Peppol BIS 3.0 e-invoice addressed to its KvK number or, for a public body, its OIN).
    customer_type: Mapped[str] = mapped_column(String(20), default="person",
                                               server_default="person")
    kvk_number: Mapped[str | None] = mapped_column(String(8), default=None)
    oin: Mapped[str | None] = mapped_column(String(20), default=None)
    vat_id: Mapped[str | None] = mapped_column(String(20), default=None)


class ClockOffset(Base):
    """The shared offset of the controllable clock (one row), so web, worker and beat agree."""

    __tablename__ = "clock_offset"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset_seconds: Mapped[float] = mapped_column(default=0.0)
