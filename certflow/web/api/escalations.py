"""The escalation inbox: what was escalated to my group, why, since when, with its history of
reminders; reassign, extend (with a reason) or take over in one request. The facade decides
who may; these routes only translate HTTP."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from certflow.engine.dto import to_json
from certflow.web.api.models import IsoDateTime, Task
from certflow.web.deps import ActorDep, EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api/escalations", tags=["escalations"], route_class=JsonRoute)


class Step(BaseModel):
    """One audit event of the task's escalation: reminder, escalation, reassign, extend, take over."""

    at: IsoDateTime
    actor: str
    action: str
    detail: dict[str, Any]


class Escalation(BaseModel):
    task: Task
    escalated_to: str | None
    escalated_since: IsoDateTime | None
    why: str
    level: int
    next_step_at: IsoDateTime | None
    history: list[Step]


class ReassignIn(BaseModel):
    assignee: str = Field(min_length=1, max_length=100)
    reason: str = Field(default="", max_length=1000)


class ExtendIn(BaseModel):
    due: str = Field(min_length=1, max_length=40,
                     description="a term from now (10 werkdagen, P7D) or a date YYYY-MM-DD (end of that day)")
    reason: str = Field(min_length=1, max_length=1000)


class TakeOverIn(BaseModel):
    reason: str = Field(default="", max_length=1000)


@router.get("")
def escalations(actor: ActorDep, engine: EngineDep, group: str | None = None) -> list[Escalation]:
    """Tasks escalated to my groups (staff who see case data may name any group), longest waiting first."""
    return to_json(engine.escalations(actor, group))


@router.get("/{task_id}")
def escalation(task_id: str, actor: ActorDep, engine: EngineDep) -> Escalation:
    return to_json(engine.escalation(actor, task_id))


@router.post("/{task_id}/reassign")
def reassign(task_id: str, body: ReassignIn, actor: ActorDep, engine: EngineDep) -> Escalation:
    return to_json(engine.escalation_reassign(actor, task_id, body.assignee, body.reason))


@router.post("/{task_id}/extend")
def extend(task_id: str, body: ExtendIn, actor: ActorDep, engine: EngineDep) -> Escalation:
    return to_json(engine.escalation_extend(actor, task_id, body.due, body.reason))


@router.post("/{task_id}/take-over")
def take_over(task_id: str, body: TakeOverIn, actor: ActorDep, engine: EngineDep) -> Escalation:
    return to_json(engine.escalation_take_over(actor, task_id, body.reason))
