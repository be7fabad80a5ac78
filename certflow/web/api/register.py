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


PAGE_SIZE, MAX_PAGE_SIZE, MAX_OFFSET = 100, 500, 100_000


@router.get("/register")
def get_public_register(engine: EngineDep,
                        q: str | None = Query(default=None, max_length=100),
                        limit: int = Query(default=PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
                        offset: int = Query(default=0, ge=0, le=MAX_OFFSET)) -> list[RegisterRow]:
    """Search on name or register number; by name, ``limit`` entries (100, at most 500) from
    ``offset``: a page shorter than ``limit`` is the last."""
    with engine.session() as session:
        return [RegisterRow.model_validate(row) for row in public_register(session, q, limit, offset)]
