"""Process instances: start, list, one instance, its history, cancel."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from certflow.engine.dto import to_json
from certflow.web.api.models import Instance, IsoDateTime
from certflow.web.deps import ActorDep, EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api/instances", tags=["instances"], route_class=JsonRoute)


class StartIn(BaseModel):
    process_id: str = Field(min_length=1, max_length=200)
    business_key: str = Field(min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)


class InstanceRow(BaseModel):
    id: str
    process_id: str
    business_key: str
    status: str
    has_incident: bool
    next_due_at: IsoDateTime | None
    created_at: IsoDateTime
    updated_at: IsoDateTime
    started_by: str


class HistoryEvent(BaseModel):
    at: IsoDateTime
    actor: str
    action: str
    element_id: str | None
    task_id: str | None
    detail: dict[str, Any]


@router.post("", status_code=201)
def start(body: StartIn, actor: ActorDep, engine: EngineDep) -> Instance:
    return to_json(engine.start(actor, body.process_id, body.business_key, body.data))


@router.get("")
def instances(actor: ActorDep, engine: EngineDep, process_id: str | None = None,
              status: str | None = None) -> list[InstanceRow]:
    return to_json(engine.instances(actor, process_id, status))


@router.get("/{instance_id}")
def instance(instance_id: str, actor: ActorDep, engine: EngineDep) -> Instance:
    return to_json(engine.instance(actor, instance_id))


@router.get("/{instance_id}/history")
def history(instance_id: str, actor: ActorDep, engine: EngineDep) -> list[HistoryEvent]:
    return to_json(engine.history(actor, instance_id))


@router.post("/{instance_id}/cancel")
def cancel(instance_id: str, actor: ActorDep, engine: EngineDep) -> Instance:
    return to_json(engine.cancel(actor, instance_id))
