"""Read-side figures for the office and the process owners: the dashboard's queue counts and
the process analytics, aggregated in SQL from the projections and the audit trail.

The audit trail is the source of the analytics. Every completed user task leaves one
``task_completed_by_user`` event whose detail holds when the task entered the queue
(``created_at``) and when it was due (``due_at``); the event's own ``at`` is when it was done.
So a step's cycle time is ``at - created_at`` and it was on time when ``at <= due_at``. Cases
"wait" at a group for the cycle time of that group's steps, plus the age of its open tasks.

Percentiles are nearest-rank: of n durations sorted ascending, the p-th percentile is the one
at rank ceil(p * n / 100) (p50 of 1, 2, 3, 4, 100 hours is 3 hours, p90 is 100). They are
picked in SQL with a window function, so one row per step leaves the database whatever the
number of cases; no interpolation, so every figure shown is a duration that really happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from certflow.engine import rules
from certflow.engine.errors import InvalidInput, NotFound
from certflow.engine.rules import SCHEDULE
from certflow.store.models import AuditEvent, Definition, HumanTask, Incident, Instance

if TYPE_CHECKING:
    from certflow.engine.facade import Actor
    from certflow.engine.runtime import Runtime

    _Base = Runtime
else:
    _Base = object

COMPLETED = "task_completed_by_user"
# Upper bounds (seconds) of the case lead-time histogram's bars; the last bar is "longer".
DAY = 86400.0
LEAD_TIME_BOUNDS: tuple[float, ...] = (DAY, 7 * DAY, 28 * DAY, 91 * DAY, 182 * DAY, 365 * DAY)


class epoch(FunctionElement[float]):  # noqa: N801 - reads like the SQL function it stands for
    """Seconds since 1970 of a stored UTC timestamp, on both databases."""

    type = Float()
    inherit_cache = True
    name = "epoch"


class epoch_text(FunctionElement[float]):  # noqa: N801
    """Seconds since 1970 of an ISO 8601 text with its offset (a time kept in JSON)."""

    type = Float()
    inherit_cache = True
    name = "epoch_text"


@compiles(epoch)
def _epoch_pg(element: epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(epoch_text)
def _epoch_text_pg(element: epoch_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM CAST({compiler.process(element.clauses, **kw)} AS TIMESTAMP WITH TIME ZONE))"


@compiles(epoch, "sqlite")
@compiles(epoch_text, "sqlite")
def _epoch_sqlite(element: FunctionElement[float], compiler: SQLCompiler, **kw: Any) -> str:
    # julianday() reads both the stored "YYYY-MM-DD HH:MM:SS.ffffff" and ISO text with "+00:00".
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


# -- the dashboard ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupQueue:
    """Open work of one group: its tasks, the unassigned and overdue among them, and the
    tasks escalated to it (its escalation inbox)."""

    group: str
    open: int
    unassigned: int
    overdue: int
    escalated: int


@dataclass(frozen=True)
class QueueFigures:
    groups: list[GroupQueue]
    open: int
    overdue: int
    incidents: int
    running: int


def queue_figures(session: Session, now: datetime) -> QueueFigures:
    """Counts over the queue projection and the incidents: a few GROUP BYs, no state read."""
    rows = session.execute(select(
        HumanTask.candidate_group, func.count(),
        func.sum(case((HumanTask.assignee.is_(None), 1), else_=0)),
        func.sum(case((HumanTask.due_at < now, 1), else_=0)),
    ).group_by(HumanTask.candidate_group)).all()
    escalated = {str(g): int(n) for g, n in session.execute(
        select(HumanTask.escalated_to, func.count()).where(HumanTask.escalated_to.is_not(None))
        .group_by(HumanTask.escalated_to)).tuples()}
    by_group: dict[str, tuple[int, int, int]] = {str(group or ""): (int(n), int(free or 0), int(late or 0)) for group, n, free, late in rows}
    groups = [GroupQueue(g, *by_group.get(g, (0, 0, 0)), escalated=int(escalated.get(g, 0)))
              for g in sorted(set(by_group) | set(escalated))]
    incidents = session.scalar(select(func.count()).select_from(Incident).where(Incident.status == "open")) or 0
    running = session.scalar(select(func.count()).select_from(Instance).where(
        Instance.status == "running", Instance.business_key != SCHEDULE)) or 0
    return QueueFigures(groups, sum(g.open for g in groups), sum(g.overdue for g in groups),
                        int(incidents), int(running))


# -- process analytics -----------------------------------------------------------------------
@dataclass(frozen=True)
class StepFigures:
    """One user task of one version, over the tasks done in the period (seconds)."""

    element_id: str
    name: str
    group: str | None
    done: int
    p50: float
    p90: float
    longest: float
    total: float
    with_due: int
    on_time: int

    @property
    def on_time_share(self) -> float | None:
        """Done by the due date, of those that had one; None when none had one."""
        return self.on_time / self.with_due if self.with_due else None


@dataclass(frozen=True)
class GroupWait:
    """Where cases wait: the time tasks spent at a group (done in the period, and still open)."""

    group: str
    done: int
    waited: float
    open: int
    open_waiting: float
    oldest_open: float

    @property
    def total(self) -> float:
        return self.waited + self.open_waiting


@dataclass(frozen=True)
class VersionFigures:
    definition_id: int
    version: int
    deployed_at: datetime
    finished: int
    cancelled: int
    lead_p50: float | None
    lead_p90: float | None
    # (upper bound in seconds, or None for "longer", number of finished cases)
    lead_histogram: list[tuple[float | None, int]]
    steps: list[StepFigures]
    groups: list[GroupWait]

    @property
    def has_data(self) -> bool:
        return bool(self.finished or self.cancelled or self.steps or self.groups)


@dataclass(frozen=True)
class ProcessFigures:
    process_id: str
    name: str
    start: datetime
    end: datetime
    versions: list[VersionFigures]


def processes(session: Session) -> list[tuple[str, str]]:
    """(process id, name of its latest version), by id."""
    names: dict[str, str] = {}
    for process_id, name in session.execute(select(Definition.process_id, Definition.name)
                                            .order_by(Definition.version)):
        names[process_id] = name
    return sorted(names.items())


def percentile_rank(n: ColumnElement[int], p: int) -> ColumnElement[int]:
    """The nearest rank ceil(p * n / 100) in integer arithmetic (both databases)."""
    return (n * p + 99) // 100


def _ranked_stats(rows: Any, keys: list[str]) -> Any:
    """Per ``keys``: count, sum, p50, p90 and max of ``rows.c.seconds`` (nearest rank)."""
    partition = [rows.c[k] for k in keys]
    ranked = select(rows, func.row_number().over(partition_by=partition, order_by=rows.c.seconds).label("rank"),
                    func.count().over(partition_by=partition).label("n")).subquery()
    at = {p: func.min(case((ranked.c["rank"] == percentile_rank(ranked.c.n, p), ranked.c.seconds)))
          for p in (50, 90)}
    return ranked, [ranked.c[k] for k in keys], [
        func.count(), func.sum(ranked.c.seconds), at[50], at[90], func.max(ranked.c.seconds)]


def step_rows(session: Session, process_id: str, start: datetime, end: datetime) -> list[Any]:
    """Per (definition, element): done, total, p50, p90, longest, with due date, on time."""
    created = AuditEvent.detail["created_at"].as_string()
    due = AuditEvent.detail["due_at"].as_string()
    done_at = epoch(AuditEvent.at)
    done = select(
        Instance.definition_id.label("definition_id"), AuditEvent.element_id.label("element_id"),
        (done_at - epoch_text(created)).label("seconds"),
        case((due.is_(None), None), (done_at <= epoch_text(due), 1), else_=0).label("on_time"),
    ).join(Instance, Instance.id == AuditEvent.instance_id).where(
        AuditEvent.action == COMPLETED, AuditEvent.at >= start, AuditEvent.at < end,
        Instance.process_id == process_id, created.is_not(None),
        # Prunes the instances whose events are read: the advance that completes a task saves
        # its instance at the event's time, so one last saved before the period has none in it.
        Instance.updated_at >= start, Instance.created_at < end,
    ).subquery()
    ranked, keys, stats = _ranked_stats(done, ["definition_id", "element_id"])
    query = select(*keys, *stats, func.count(ranked.c.on_time), func.coalesce(func.sum(ranked.c.on_time), 0))
    return list(session.execute(query.group_by(*keys)).all())


def lead_rows(session: Session, process_id: str, start: datetime, end: datetime) -> list[Any]:
    """Per (definition, bucket) of cases completed in the period: count, plus p50/p90 per definition."""
    seconds = (epoch(Instance.ended_at) - epoch(Instance.created_at)).label("seconds")
    finished = select(Instance.definition_id.label("definition_id"), seconds).where(
        Instance.process_id == process_id, Instance.status == "completed",
        Instance.ended_at >= start, Instance.ended_at < end, Instance.business_key != SCHEDULE,
    ).subquery()
    ranked, keys, stats = _ranked_stats(finished, ["definition_id"])
    overall = session.execute(select(*keys, *stats).group_by(*keys)).all()
    bucket = case(*[(finished.c.seconds < b, i) for i, b in enumerate(LEAD_TIME_BOUNDS)],
                  else_=len(LEAD_TIME_BOUNDS)).label("bucket")
    buckets = session.execute(select(finished.c.definition_id, bucket, func.count())
                              .group_by(finished.c.definition_id, bucket)).all()
    return [overall, buckets]


def analytics(session: Session, process_id: str, start: datetime, end: datetime, now: datetime) -> ProcessFigures:
    definitions = session.execute(select(Definition.id, Definition.version, Definition.name,
                                         Definition.deployed_at, Definition.elements)
                                  .where(Definition.process_id == process_id)
                                  .order_by(Definition.version.desc())).all()
    steps = step_rows(session, process_id, start, end)
    overall, buckets = lead_rows(session, process_id, start, end)
    cancelled = dict(session.execute(select(Instance.definition_id, func.count()).where(
        Instance.process_id == process_id, Instance.status == "cancelled", Instance.ended_at >= start,
        Instance.ended_at < end, Instance.business_key != SCHEDULE).group_by(Instance.definition_id)).tuples().all())
    waiting = session.execute(select(
        Instance.definition_id, HumanTask.candidate_group, func.count(),
        func.sum(epoch(HumanTask.created_at)), func.min(epoch(HumanTask.created_at)),
    ).join(Instance, Instance.id == HumanTask.instance_id).where(HumanTask.process_id == process_id)
        .group_by(Instance.definition_id, HumanTask.candidate_group)).all()
    versions = [_version(d, [s for s in steps if s[0] == d.id], [o for o in overall if o[0] == d.id],
                         [b for b in buckets if b[0] == d.id], int(cancelled.get(d.id, 0)),
                         [w for w in waiting if w[0] == d.id], now) for d in definitions]
    name = definitions[0].name if definitions else process_id
    return ProcessFigures(process_id, name, start, end, versions)


def _version(d: Any, steps: list[Any], overall: list[Any], buckets: list[Any], cancelled: int,
             waiting: list[Any], now: datetime) -> VersionFigures:
    elements: dict[str, Any] = d.elements or {}
    order = {element_id: i for i, element_id in enumerate(elements)}
    figures = sorted((StepFigures(
        element_id=el, name=(elements.get(el) or {}).get("name") or el,
        group=(elements.get(el) or {}).get("lane"), done=int(n), total=float(total or 0),
        p50=float(p50 or 0), p90=float(p90 or 0), longest=float(longest or 0),
        with_due=int(with_due or 0), on_time=int(on_time or 0),
    ) for _, el, n, total, p50, p90, longest, with_due, on_time in steps),
        key=lambda s: (order.get(s.element_id, len(order)), s.element_id))
    counts = {int(b): int(n) for _, b, n in buckets}
    histogram = [(bound, counts.get(i, 0)) for i, bound in enumerate((*LEAD_TIME_BOUNDS, None))]
    _, finished, _, lead_p50, lead_p90, _ = overall[0] if overall else (None, 0, None, None, None, None)
    return VersionFigures(
        definition_id=d.id, version=d.version, deployed_at=d.deployed_at, finished=int(finished),
        cancelled=cancelled, lead_p50=lead_p50, lead_p90=lead_p90, lead_histogram=histogram,
        steps=figures, groups=_group_waits(figures, waiting, now))


def _group_waits(steps: list[StepFigures], waiting: list[Any], now: datetime) -> list[GroupWait]:
    done: dict[str, list[float]] = {}
    for step in steps:
        entry = done.setdefault(step.group or "", [0, 0.0])
        entry[0] += step.done
        entry[1] += step.total
    now_s = now.timestamp()
    still: dict[str, tuple[int, float, float]] = {}
    for _, group, n, created_sum, first in waiting:
        still[group or ""] = (int(n), max(0.0, int(n) * now_s - float(created_sum)),
                              max(0.0, now_s - float(first)))
    waits = [GroupWait(g, int(done.get(g, [0, 0.0])[0]), float(done.get(g, [0, 0.0])[1]),
                       *still.get(g, (0, 0.0, 0.0))) for g in set(done) | set(still)]
    return sorted(waits, key=lambda w: (-w.total, w.group))


class AnalyticsMixin(_Base):
    """The facade's read side for the dashboard and the analytics page (staff only)."""

    def queue_figures(self, actor: "Actor") -> QueueFigures:
        rules.staff_only(actor, "see the dashboard")
        with self.session() as session:
            return queue_figures(session, self.now())

    def analytics_processes(self, actor: "Actor") -> list[tuple[str, str]]:
        rules.staff_only(actor, "see process analytics")
        with self.session() as session:
            return processes(session)

    def process_analytics(self, actor: "Actor", process_id: str, start: datetime, end: datetime) -> ProcessFigures:
        """Figures of ``process_id`` over tasks done and cases ended in [start, end)."""
        rules.staff_only(actor, "see process analytics")
        if end <= start:
            raise InvalidInput("the period must end after it starts", field="end")
        with self.session() as session:
            if not session.scalar(select(Definition.id).where(Definition.process_id == process_id).limit(1)):
                raise NotFound(f"no process {process_id!r}")
            return analytics(session, process_id, start, end, self.now())
