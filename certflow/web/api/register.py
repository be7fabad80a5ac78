"""The public Register Loopbaanprofessional (no sign-in): name, register number, status,
level/specialisation and validity, and nothing else about a person."""

from fastapi import APIRouter, Query
from pydantic import BaseModel

from certflow.services.register import public_register
from certflow.web.deps import EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/public", tags=["public"], route_class=JsonRoute)


class RegisterRow(BaseModel):
    name: str
    register_number: str
    status: str
    level: str
    specialisation: str | None
    valid_until: str


@router.get("/register")
def get_public_register(engine: EngineDep,
                        q: str | None = Query(default=None, max_length=100)) -> list[RegisterRow]:
    """Search on name or register number."""
    with engine.session() as session:
        return [RegisterRow.model_validate(row) for row in public_register(session, q)]
