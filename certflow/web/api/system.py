"""Who am I, and is the service up."""

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from certflow.web.deps import ActorDep, EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api", tags=["system"], route_class=JsonRoute)


class Health(BaseModel):
    status: str


class Me(BaseModel):
    username: str
    groups: list[str]
    is_staff: bool


@router.get("/health")
def health(engine: EngineDep) -> Health:
    with engine.session() as session:
        session.execute(text("select 1"))
    return Health(status="ok")


@router.get("/me")
def me(actor: ActorDep) -> Me:
    return Me(username=actor.username, groups=list(actor.groups), is_staff=actor.is_staff)
