"""Human tasks: the inbox, one task, claim / unclaim / assign, complete. The facade decides who
may see and do what; these routes only translate HTTP."""

from typing import Any

from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from certflow.engine.dto import to_json
from certflow.engine.inbox import MAX_PAGE_SIZE, PAGE_SIZE
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
def inbox(request: Request, response: Response, actor: ActorDep, engine: EngineDep,
          process_id: str | None = None, group: str | None = None, overdue: bool | None = None,
          limit: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
          after: str | None = Query(None, max_length=500)) -> list[Task]:
    """My tasks and my groups' unassigned ones, soonest due first, ``limit`` at a time. When
    there are more, the ``Link`` header (rel="next") and ``X-Next-After`` give the next page:
    pass the cursor back as ``after``."""
    page = engine.inbox_page(actor, process_id, group, overdue, limit, after)
    if page.next is not None:
        query = {k: v for k, v in request.query_params.items() if k != "after"}
        url = f"{request.url.path}?{urlencode({**query, 'after': page.next})}"
        response.headers["Link"] = f'<{url}>; rel="next"'
        response.headers["X-Next-After"] = page.next
    return to_json(page.tasks)


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
