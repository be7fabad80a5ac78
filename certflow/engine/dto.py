"""Plain data the facade returns. Never SpiffWorkflow objects."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class DeployedVersion:
    process_id: str
    version: int
    definition_id: int
    created: bool


@dataclass(frozen=True)
class TaskView:
    id: str
    instance_id: str
    process_id: str
    business_key: str
    element_id: str
    title: str
    candidate_group: str | None
    assignee: str | None
    form: str | None
    form_schema: dict[str, Any] | None
    priority: int
    due_at: datetime | None
    created_at: datetime
    overdue: bool
    context: dict[str, Any] = field(default_factory=dict)
    # Escalation: policy steps done, the next one's time, and where it is escalated to now.
    escalation_level: int = 0
    next_escalation_at: datetime | None = None
    escalated_to: str | None = None
    escalated_at: datetime | None = None
    # The diagram names the person (certflow.engine.assignment): never released to the group.
    # Only ``Engine.task`` fills it in; lists leave it False.
    personal: bool = False
    # The task's English name, where the diagram gives one (property ``name_en``); ``title``
    # is the diagram's own (Dutch) name.
    title_en: str | None = None


@dataclass(frozen=True)
class InboxPage:
    tasks: list[TaskView]
    # Pass as ``after`` for the next page; None on the last page.
    next: str | None = None


@dataclass(frozen=True)
class InstanceView:
    id: str
    process_id: str
    version: int
    business_key: str
    status: str
    has_incident: bool
    next_due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    started_by: str
    data: dict[str, Any] = field(default_factory=dict)
    open_tasks: list[TaskView] = field(default_factory=list)
    waiting_for: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """An open user task of a case, as the person the case is about may see it: what, whose
    group, due when; and its id only when it is theirs to do."""

    title: str
    group: str | None
    due_at: datetime | None
    overdue: bool
    mine: bool
    task_id: str | None


@dataclass(frozen=True)
class CaseProgress:
    """Where a case stands for its candidate: open steps and what it waits for, no data."""

    id: str
    process_id: str
    business_key: str
    status: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    steps: list[Step] = field(default_factory=list)
    waiting_for: list[str] = field(default_factory=list)
    # A finished case: the id of the end event it came to (``end_certified``), which the
    # pages put in words; None while running, when cancelled, or for an unknown end.
    outcome: str | None = None


@dataclass(frozen=True)
class Completed:
    """What completing a task tells the user: it is done, where the instance stands, and what
    in that instance is theirs to do next (not the instance's data: it may not be theirs)."""

    task_id: str
    instance_id: str
    instance_status: str
    next_tasks: list[TaskView]


@dataclass(frozen=True)
class EscalationView:
    """A task in a coordinator's escalation inbox: what, why, since when, and its history of
    reminders and escalations (audit events, oldest first)."""

    task: TaskView
    escalated_to: str | None
    escalated_since: datetime | None
    why: str
    level: int
    next_step_at: datetime | None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class JobMessage:
    """What is published to the broker: only the job id; the worker reads the rest."""

    job_id: int
    operator: str
    # An outbox job (certflow.engine.outbox): its run advances no instance.
    detached: bool = False


@dataclass(frozen=True)
class IncidentView:
    id: int
    instance_id: str
    element_id: str
    operator: str
    error: str  # what went wrong, for people; the traceback is in the server log only
    attempts: int
    status: str
    created_at: datetime
    # An outbox job's (certflow.engine.outbox): the case did not wait for it and has gone on.
    detached: bool = False


def to_json(obj: Any) -> Any:
    """DTO → JSON-able dict (datetimes as ISO strings)."""
    if hasattr(obj, "__dataclass_fields__"):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


@dataclass(frozen=True)
class MonitorRow:
    """One instance in the monitor's list: what it is, where it stands, what needs a look."""

    id: str
    process_id: str
    version: int
    business_key: str
    status: str
    subject: str | None
    started_by: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    has_incident: bool
    next_due_at: datetime | None
    open_steps: list[str] = field(default_factory=list)
    overdue: bool = False


@dataclass(frozen=True)
class MonitorPage:
    rows: list[MonitorRow]
    # Pass as ``after`` for the next page; None on the last page.
    next: str | None = None


@dataclass(frozen=True)
class TimelineEntry:
    """A step of the instance's history (audit trail), with its due time when it had one."""

    at: datetime
    action: str
    actor: str
    element_id: str | None
    element_name: str | None
    due_at: datetime | None = None
    late: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MigrationCheck:
    """Whether the instance can move to the newest version of its process, and if not why."""

    current_version: int
    newest_version: int
    refusals: list[str] = field(default_factory=list)
    # The element ids the refusals name (for markers on the diagram).
    elements: list[str] = field(default_factory=list)
    # Each refusal as data, for pages that say it in their own language: element_id,
    # element_name, reason (missing | type_changed | passed_missing | subprocess), old_type, new_type.
    details: list[dict[str, str]] = field(default_factory=list)

    @property
    def possible(self) -> bool:
        return self.newest_version > self.current_version and not self.refusals


@dataclass(frozen=True)
class InstanceDetail:
    """The monitor's instance page: the instance, its markers on the diagram, its timeline,
    data (``None`` when the actor may not see personal data: then only ``data_keys``),
    incidents and what moving to the newest version would do."""

    instance: MonitorRow
    active: list[str]
    done: list[str]
    incident_elements: list[str]
    element_names: dict[str, str]
    timeline: list[TimelineEntry]
    data: dict[str, Any] | None
    data_keys: list[str]
    incidents: list[IncidentView]
    open_tasks: list[TaskView]
    waiting_for: list[str]
    migration: MigrationCheck
