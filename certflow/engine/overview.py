"""Read models for pages: what the inbox filters can offer, and where a person's own cases
stand. Both read the definitions and the projections only (never an instance's state), so
they cost a few indexed queries however large the instances are."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from certflow.engine.dto import CaseProgress, Step
from certflow.engine.rules import SCHEDULE
from certflow.store.models import WITHOUT_STATE, AuditEvent, Definition, HumanTask, Instance, Subscription

if TYPE_CHECKING:
    from certflow.engine.facade import Actor

MAX_CASES = 100


def inbox_choices(latest: dict[str, tuple[int, dict[str, Any]]], actor: "Actor") -> dict[str, Any]:
    """The user tasks of each process's latest version (``Runtime.latest_elements``) the
    actor may be given (staff: all), and the groups to filter on. Only the latest versions:
    every version's would make each inbox page cost more as process owners deploy."""
    tasks, lanes = [], set()
    for process_id, (_, elements) in sorted(latest.items()):
        for element_id, meta in elements.items():
            if meta.get("type") == "UserTask" and (actor.is_staff or meta.get("lane") in actor.groups):
                tasks.append({"process_id": process_id, "element_id": element_id,
                              "name": meta.get("name") or element_id, "group": meta.get("lane")})
                lanes.add(meta.get("lane"))
    groups = sorted(g for g in lanes if g) if actor.is_staff else sorted(actor.groups)
    return {"processes": sorted(latest), "tasks": tasks, "groups": groups}


def progress(session: Session, actor: "Actor", process_id: str | None, now: datetime) -> list[CaseProgress]:
    """The actor's own cases, newest first: every open task's title, group and due date
    (anyone's: that is where the case stands), with ids only for the actor's own."""
    query = (select(Instance).options(WITHOUT_STATE)
             .where(or_(Instance.started_by == actor.username, Instance.subject == actor.username),
                    Instance.business_key != SCHEDULE))
    if process_id:
        query = query.where(Instance.process_id == process_id)
    instances = session.scalars(query.order_by(Instance.created_at.desc()).limit(MAX_CASES)).all()
    ids = [i.id for i in instances]
    if not ids:
        return []
    tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id.in_(ids))
                            .order_by(HumanTask.due_at)).all()
    waits = session.execute(select(Subscription.instance_id, Subscription.message_name)
                            .where(Subscription.instance_id.in_(ids))).all()
    outcomes = _outcomes(session, [i for i in instances if i.status == "completed"])
    return [CaseProgress(
        id=i.id, process_id=i.process_id, business_key=i.business_key, status=i.status,
        created_at=i.created_at, updated_at=i.updated_at, ended_at=i.ended_at,
        steps=[_step(t, actor, now) for t in tasks if t.instance_id == i.id],
        waiting_for=sorted({name for iid, name in waits if iid == i.id}),
        outcome=outcomes.get(i.id),
    ) for i in instances]


def _outcomes(session: Session, finished: list[Instance]) -> dict[str, str]:
    """Instance id -> the end event each finished case came to last. Side branches end too
    (a reminder sent: ``end_payment_reminder``), earlier; the main path's end is the last."""
    if not finished:
        return {}
    ends = {definition_id: {e for e, meta in (elements or {}).items() if meta.get("type") == "EndEvent"}
            for definition_id, elements in session.execute(
                select(Definition.id, Definition.elements)
                .where(Definition.id.in_({i.definition_id for i in finished})))}
    end_of = {i.id: ends.get(i.definition_id, set()) for i in finished}
    outcomes: dict[str, str] = {}
    for instance_id, element_id in session.execute(
            select(AuditEvent.instance_id, AuditEvent.element_id)
            .where(AuditEvent.instance_id.in_(end_of), AuditEvent.action == "completed")
            .order_by(AuditEvent.id)):
        if element_id in end_of[instance_id]:
            outcomes[instance_id] = element_id
    return outcomes


def _step(task: HumanTask, actor: "Actor", now: datetime) -> Step:
    mine = task.assignee == actor.username
    return Step(task.title, task.candidate_group, task.due_at,
                task.due_at is not None and task.due_at < now, mine, task.id if mine else None)
