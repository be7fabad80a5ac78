"""Process instances: start, list, one instance, its history, cancel, move to the newest version."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from certflow.engine.dto import to_json
from certflow.web.api.models import Error, Instance, IsoDateTime
from certflow.web.deps import ActorDep, EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api/instances", tags=["instances"], route_class=JsonRoute)


class StartIn(BaseModel):
    process_id: str = Field(min_length=1, max_length=200)
    business_key: str = Field(min_length=1, max_length=200, description=(
        "The case number, unique among the process's running cases. One with a colon belongs to "
        "the user named before it (`cas:certification`): anyone but staff may use only their own."))
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


class MigrateIn(BaseModel):
    reason: str = Field("", max_length=1000, description="Why the case moves (kept in its audit trail).")


class Migrated(BaseModel):
    instance_id: str
    from_version: int
    to_version: int


class MigrationRefusal(BaseModel):
    element_id: str
    element_name: str
    reason: str = Field(description="missing | type_changed | passed_missing | subprocess")
    old_type: str = ""
    new_type: str = ""
    message: str


class MigrationRefused(BaseModel):
    """409: the case stays where it is. ``refusals`` names each element in the way (empty
    when the case is not running or already on the newest version; ``error`` says which)."""

    error: str
    elements: list[str] = Field(default_factory=list)
    refusals: list[MigrationRefusal] = Field(default_factory=list)
    current_version: int | None = None
    newest_version: int | None = None


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


@router.post("/{instance_id}/migrate", responses={
    409: {"model": MigrationRefused, "description": "cannot move; nothing changed"},
    422: {"model": Error, "description": "the request was not valid"}})
def migrate(instance_id: str, body: MigrateIn, actor: ActorDep, engine: EngineDep) -> Migrated:
    """Move a running case to the newest version of its process, where every step it stands
    on or passed is still there (the monitor's *move to the newest version*). Process owners
    and admins only."""
    moved = engine.migrate_instance(actor, instance_id, body.reason)
    return Migrated(instance_id=instance_id, from_version=moved.current_version, to_version=moved.newest_version)
