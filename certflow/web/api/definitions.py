"""Deploying the process folders (process owners, as the studio) and reading what was
deployed (staff)."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from certflow.engine.dto import to_json
from certflow.engine.studio import studio_only
from certflow.errors import Forbidden
from certflow.web.api.models import IsoDateTime
from certflow.web.deps import ActorDep, EngineDep, PathId
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api", tags=["definitions"], route_class=JsonRoute)


class DeployIn(BaseModel):
    only: list[str] | None = None


class Deployed(BaseModel):
    process_id: str
    version: int
    definition_id: int
    created: bool


class DefinitionRow(BaseModel):
    id: int
    process_id: str
    version: int
    name: str
    content_hash: str
    deployed_at: IsoDateTime
    deployed_by: str


class DefinitionSource(BaseModel):
    process_id: str
    version: int
    sources: dict[str, str]
    forms: dict[str, Any]


@router.post("/deployments", status_code=201)
def deploy(body: DeployIn, actor: ActorDep, engine: EngineDep) -> list[Deployed]:
    """Validate every process folder (or ``only`` these), then store what changed. Process
    owners only: a deploy changes what every new case runs, as a studio deploy does."""
    studio_only(actor, "deploy")
    return to_json(engine.deploy(actor, only=body.only))


@router.get("/definitions")
def definitions(actor: ActorDep, engine: EngineDep) -> list[DefinitionRow]:
    if not actor.is_staff:
        raise Forbidden("only staff may list definitions")
    return to_json(engine.definitions())


@router.get("/definitions/{process_id}/versions/{version}")
def definition(process_id: str, version: PathId, actor: ActorDep,
               engine: EngineDep) -> DefinitionSource:
    if not actor.is_staff:
        raise Forbidden("only staff may read definitions")
    return engine.definition_source(process_id, version)  # type: ignore[return-value]
