"""The monitor: staff's view of every instance, and the operations on one (Camunda Operate's
place): a filtered, paged list; one instance with its diagram markers, timeline, data and
incidents; cancel and migrate to the newest version.

The list reads the ``instances`` row and its projections only, never an instance's state, by
indexed conditions (process, status, business key prefix, subject, definition ids for a
version, the open-incident flag, overdue queue entries), newest first by keyset (``created_at``,
``id``), so a page costs the same at any number of instances. Only the instance page restores
the one workflow it shows.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from certflow.engine import queue, rules
from certflow.engine import version_migration as moving
from certflow.engine.jobs import incident_views
from certflow.engine.dto import (
    InstanceDetail, MigrationCheck, MonitorPage, MonitorRow, TimelineEntry,
)
from certflow.engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from certflow.engine.filter_parsing import parse_filter
from certflow.engine.spiff import state_from_dict, state_to_dict
from certflow.roles import CASE_DATA_ROLES
from certflow.i18n import Message, N_
from certflow.store.models import (WITHOUT_STATE, AuditEvent, Definition, HumanTask, Incident, Instance,
                                   Subscription)

if TYPE_CHECKING:
    from certflow.engine.facade import Actor
    from certflow.engine.runtime import Runtime

    _Base = Runtime
else:
    _Base = object

STATUSES = ("running", "completed", "cancelled")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# Who sees the monitor; who of them sees a case's personal data; who moves versions.
MONITOR_ROLES = ("office", "coordinator", "office_manager", "admin", "process_owner")
DATA_ROLES = CASE_DATA_ROLES
MIGRATE_ROLES = ("process_owner", "admin")
# Audit actions the timeline leaves out: bookkeeping, not steps of the case.
QUIET = frozenset({"future", "likely", "maybe", "timers_checked", "job_result_dropped"})


@dataclass(frozen=True)
class InstanceFilter:
    """Empty fields mean "any". ``business_key`` matches from the start ("APP-1" finds APP-12)."""

    process_id: str | None = None
    version: int | None = None
    status: str | None = None
    business_key: str | None = None
    candidate: str | None = None
    has_incident: bool | None = None
    overdue: bool | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        if self.version is not None and not 1 <= self.version <= rules.MAX_VERSION:
            raise InvalidInput("a version is a whole number from 1", field="version")
        if self.version is not None and not self.process_id:
            raise InvalidInput("choose a process to filter on its version", field="version")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InstanceFilter":
        """From a query string: unknown keys ignored, blanks mean "any"."""
        return parse_filter(cls, data, flags=("has_incident", "overdue"),
                            numbers={"version": "a version is a whole number from 1"})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) not in (None, "")}


def _cursor(created_at: datetime, instance_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), instance_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        created, instance_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), str(instance_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("this page link is broken; start again from the first page", field="after") from exc


def may_monitor(actor: "Actor") -> None:
    if not (actor.is_staff and set(actor.groups) & set(MONITOR_ROLES)):
        raise Forbidden("only the office, coordinators, process owners and admins may use the monitor")


def page(session: Session, flt: InstanceFilter, now: datetime, after: str | None = None,
         limit: int = PAGE_SIZE) -> MonitorPage:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"a page holds 1 to {MAX_PAGE_SIZE} instances", field="limit")
    query = select(Instance.id, Instance.process_id, Definition.version, Instance.business_key,
                   Instance.status, Instance.subject, Instance.started_by, Instance.created_at,
                   Instance.updated_at, Instance.ended_at, Instance.has_incident,
                   Instance.next_due_at).join(Definition, Definition.id == Instance.definition_id)
    query = query.where(*_conditions(flt, now))
    if after:
        created, last_id = _decode(after)
        query = query.where(Instance.created_at <= created, or_(
            Instance.created_at < created, and_(Instance.created_at == created, Instance.id < last_id)))
    rows = session.execute(query.order_by(Instance.created_at.desc(), Instance.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    steps: dict[str, list[str]] = {}
    late: set[str] = set()
    if rows:
        for iid, title, due in session.execute(select(HumanTask.instance_id, HumanTask.title, HumanTask.due_at)
                                               .where(HumanTask.instance_id.in_([r.id for r in rows]))
                                               .order_by(HumanTask.due_at)):
            steps.setdefault(iid, []).append(title)
            if due is not None and _aware(due) < now:
                late.add(iid)
    result = [MonitorRow(**r._mapping, open_steps=steps.get(r.id, []), overdue=r.id in late) for r in rows]
    return MonitorPage(result, _cursor(rows[-1].created_at, rows[-1].id) if more else None)


def _conditions(flt: InstanceFilter, now: datetime) -> list[Any]:
    where: list[Any] = []
    if flt.process_id:
        where.append(Instance.process_id == flt.process_id)
    if flt.version is not None:
        where.append(Instance.definition_id.in_(select(Definition.id).where(
            Definition.process_id == flt.process_id, Definition.version == flt.version)))
    if flt.status:
        where.append(Instance.status == flt.status)
    if flt.business_key:
        # A prefix as a range: served by the business_key index on both databases (LIKE is not).
        # LIKE then checks the prefix exactly, whatever the database's collation.
        where += [Instance.business_key >= flt.business_key,
                  Instance.business_key < flt.business_key + "\U0010ffff",
                  Instance.business_key.startswith(flt.business_key, autoescape=True)]
    if flt.candidate:
        where.append(Instance.subject == flt.candidate)
    if flt.has_incident is not None:  # kept by the engine as incidents open and resolve
        where.append(Instance.has_incident.is_(flt.has_incident))
    # A correlated EXISTS, probed on the instance_id index while the list walks newest first:
    # no scan of all open tasks, however many there are.
    if flt.overdue is not None:
        late = select(HumanTask.id).where(HumanTask.instance_id == Instance.id, HumanTask.due_at < now).exists()
        where.append(late if flt.overdue else ~late)
    return where


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def choices(session: Session) -> dict[str, dict[str, Any]]:
    """Every deployed process: its newest name and its versions, for the filters."""
    found: dict[str, dict[str, Any]] = {}
    for process_id, version, name in session.execute(
            select(Definition.process_id, Definition.version, Definition.name)
            .order_by(Definition.process_id, Definition.version)):
        entry = found.setdefault(process_id, {"name": name, "versions": []})
        entry["name"] = name
        entry["versions"].append(version)
    return found


def row_of(session: Session, instance: Instance, version: int, now: datetime) -> MonitorRow:
    tasks = session.execute(select(HumanTask.title, HumanTask.due_at)
                            .where(HumanTask.instance_id == instance.id).order_by(HumanTask.due_at)).all()
    return MonitorRow(
        id=instance.id, process_id=instance.process_id, version=version,
        business_key=instance.business_key, status=instance.status, subject=instance.subject,
        started_by=instance.started_by, created_at=instance.created_at, updated_at=instance.updated_at,
        ended_at=instance.ended_at, has_incident=instance.has_incident, next_due_at=instance.next_due_at,
        open_steps=[t.title for t in tasks],
        overdue=any(t.due_at is not None and _aware(t.due_at) < now for t in tasks))


def timeline(session: Session, instance_id: str, names: dict[str, str], now: datetime,
             open_due: dict[str, datetime | None] | None = None) -> list[TimelineEntry]:
    """The audit trail as steps: when each element opened and finished, who did it, and for
    user tasks the due time it had and whether it was done late (an open task: is late now)."""
    open_due = open_due or {}
    entries = []
    for event in session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                                 .order_by(AuditEvent.at, AuditEvent.id)):
        if event.action in QUIET:
            continue
        detail = dict(event.detail or {})
        due = detail.get("due_at")
        due_at = datetime.fromisoformat(due) if isinstance(due, str) else None
        still_open = event.action == "ready" and (event.task_id or "") in open_due
        if still_open:
            due_at = open_due[event.task_id or ""]
        entries.append(TimelineEntry(
            at=event.at, action=event.action, actor=event.actor, element_id=event.element_id,
            element_name=names.get(event.element_id or "", event.element_id), due_at=due_at,
            late=due_at is not None and (now if still_open else _aware(event.at)) > _aware(due_at),
            detail={k: v for k, v in detail.items() if k in ("reason", "error", "from_version",
                                                              "to_version", "message", "assignee")}))
    return entries


class MonitorMixin(_Base):
    """The facade's monitor operations (certflow.engine.facade.Engine)."""

    def monitor_page(self, actor: "Actor", flt: InstanceFilter | None = None, after: str | None = None,
                     limit: int = PAGE_SIZE) -> MonitorPage:
        may_monitor(actor)
        with self.session() as session:
            return page(session, flt or InstanceFilter(), self.now(), after, limit)

    def monitor_choices(self, actor: "Actor") -> dict[str, dict[str, Any]]:
        may_monitor(actor)
        with self.session() as session:
            return choices(session)

    def monitor_detail(self, actor: "Actor", instance_id: str) -> InstanceDetail:
        """One instance as the monitor shows it. Personal data (the instance's variables) only
        for the roles that work with the people (``DATA_ROLES``); others see the names."""
        may_monitor(actor)
        with self.session(snapshot=True) as session:  # its row, incidents, tasks and waits of one moment
            now = self.now()  # after the session read the shared clock (another process may move it)
            instance = session.get(Instance, instance_id)
            if instance is None:
                raise NotFound(f"no instance {instance_id!r}")
            definition = self.definition(session, instance.definition_id)
            workflow = self.restore(instance, definition)
            names = {k: str(v.get("name") or k) for k, v in definition.elements.items()}
            active, done = _markers(workflow)
            incidents = incident_views(session, session.scalars(
                select(Incident).where(Incident.instance_id == instance_id).order_by(Incident.created_at)).all())
            data = rules.current_data(workflow)
            tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)
                                    .order_by(HumanTask.due_at)).all()
            waits = session.scalars(select(Subscription).where(Subscription.instance_id == instance_id)).all()
            return InstanceDetail(
                instance=row_of(session, instance, definition.version, now),
                active=active, done=done,
                incident_elements=sorted({i.element_id for i in incidents if i.status == "open"}),
                element_names=names,
                timeline=timeline(session, instance_id, names, now, {t.id: t.due_at for t in tasks}),
                data=data if set(actor.groups) & set(DATA_ROLES) else None, data_keys=sorted(data),
                incidents=incidents,
                open_tasks=[queue.view(t, definition.forms, now, definition.elements) for t in tasks],
                waiting_for=[f"{s.message_name} ({s.correlation_key})" for s in waits],
                migration=self._migration_check(session, instance, workflow, definition.version))

    def diagram_xml(self, actor: "Actor", instance_id: str) -> str:
        """The BPMN source of the version the instance runs on."""
        may_monitor(actor)
        with self.session() as session:
            instance = session.get(Instance, instance_id, options=[WITHOUT_STATE])
            if instance is None:
                raise NotFound(f"no instance {instance_id!r}")
            sources = session.scalar(select(Definition.sources).where(Definition.id == instance.definition_id))
        for path, text in sorted((sources or {}).items()):
            if path.endswith(".bpmn") and f'id="{instance.process_id}"' in text:
                return str(text)
        raise NotFound(f"no diagram stored for {instance.process_id}")

    def _migration_check(self, session: Session, instance: Instance, workflow: Any,
                         current: int) -> MigrationCheck:
        newest = rules.definition(session, instance.process_id, None)
        if instance.status != "running" or newest.version <= current:
            return MigrationCheck(current, newest.version)
        refusals = moving.check(workflow, self.definition(session, newest.id).spec)
        return MigrationCheck(current, newest.version, [r.message(newest.version) for r in refusals],
                              [r.element_id for r in refusals], [asdict(r) for r in refusals])

    def migrate_instance(self, actor: "Actor", instance_id: str, reason: str = "") -> MigrationCheck:
        """Move a running instance to the newest version of its process, or refuse (``Conflict``
        naming the element) and change nothing. Process owners and admins only."""
        may_monitor(actor)
        if not set(actor.groups) & set(MIGRATE_ROLES):
            raise Forbidden("only process owners and admins may move an instance to another version")
        if len(reason) > 1000:
            raise InvalidInput("a reason is at most 1000 characters", field="reason")
        with self.advancing(instance_id, actor.username) as adv:
            if adv.instance.status != "running":
                raise Conflict(Message(N_("this case is %(status)s; only a running case moves to another version"),
                                       status=adv.instance.status))
            current = adv.definition.version
            newest = rules.definition(adv.session, adv.instance.process_id, None)
            if newest.version <= current:
                raise Conflict(Message(N_("this case already runs on version %(version)s, the newest"),
                                       version=current))
            target = self.definition(adv.session, newest.id)
            refusals = moving.check(adv.workflow, target.spec)
            if refusals:
                raise Conflict(f"instance {instance_id} cannot move to version {newest.version}: "
                               + "; ".join(r.message(newest.version) for r in refusals),
                               elements=[r.element_id for r in refusals],
                               refusals=[{**asdict(r), "message": r.message(newest.version)} for r in refusals],
                               current_version=current, newest_version=newest.version)
            moving.migrate(adv.workflow, target.spec, target.subprocess_specs)
            try:  # what is saved must restore against the new version: prove it before commit
                state_from_dict(state_to_dict(adv.workflow), target.spec, target.subprocess_specs)
            except Exception as exc:  # any failure to restore means: do not move
                raise Conflict(f"instance {instance_id} cannot move to version {target.version}: "
                               f"its state does not restore there ({exc})") from exc
            adv.instance.definition_id = target.id
            adv.definition = target
            adv.audit("instance_migrated", from_version=current, to_version=target.version, reason=reason)
        return MigrationCheck(current, target.version)


def _markers(workflow: Any) -> tuple[list[str], list[str]]:
    """Element ids with a token now (open tasks), and those the instance has passed."""
    active, done = set(), set()
    for task in workflow.get_tasks():
        element = getattr(task.task_spec, "bpmn_id", None)
        if not element:
            continue
        if task.has_state(TaskState.READY | TaskState.STARTED | TaskState.WAITING):
            active.add(element)
        elif task.has_state(TaskState.COMPLETED):
            done.add(element)
    return sorted(active), sorted(done - active)
