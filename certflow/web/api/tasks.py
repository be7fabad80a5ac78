"""Human tasks: the inbox, one task, claim / unclaim / assign, complete. The facade decides who
may see and do what; these routes only translate HTTP."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from certflow.engine.dto import to_json
from certflow.web.api.models import Task
from certflow.web.deps import ActorDep, EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api", tags=["tasks"], route_class=JsonRoute)


class AssignIn(BaseModel):
    assignee: str = Field(min_length=1, max_length=100)


class CompleteIn(BaseModel):
    data: dict[str, Any]


class Completed(BaseModel):
    """The task is done; where the instance stands; what in it is the caller's to do next."""

    task_id: str
    instance_id: str
    instance_status: str
    next_tasks: list[Task]


@router.get("/inbox")
def inbox(actor: ActorDep, engine: EngineDep, process_id: str | None = None,
          group: str | None = None, overdue: bool | None = None) -> list[Task]:
    """My tasks and my groups' unassigned ones."""
    return to_json(engine.inbox(actor, process_id, group, overdue))


@router.get("/tasks/{task_id}")
def task(task_id: str, actor: ActorDep, engine: EngineDep) -> Task:
    return to_json(engine.task(actor, task_id))


@router.post("/tasks/{task_id}/claim")
def claim(task_id: str, actor: ActorDep, engine: EngineDep) -> Task:
    return to_json(engine.claim(actor, task_id))


@router.post("/tasks/{task_id}/unclaim")
def unclaim(task_id: str, actor: ActorDep, engine: EngineDep) -> Task:
    return to_json(engine.unclaim(actor, task_id))


@router.post("/tasks/{task_id}/assign")
def assign(task_id: str, body: AssignIn, actor: ActorDep, engine: EngineDep) -> Task:
    return to_json(engine.assign(actor, task_id, body.assignee))


@router.post("/tasks/{task_id}/complete")
def complete(task_id: str, body: CompleteIn, actor: ActorDep, engine: EngineDep) -> Completed:
    return to_json(engine.complete(actor, task_id, body.data))
