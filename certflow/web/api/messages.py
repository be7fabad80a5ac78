"""Messages into processes (``payment_received``, ``register_fee_due``...) and incidents: the
service tasks that failed for good, to retry or skip (staff)."""

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from certflow.engine.dto import to_json
from certflow.errors import InvalidInput
from certflow.web.api.models import IsoDateTime
from certflow.web.deps import ActorDep, EngineDep, PathId
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api", route_class=JsonRoute)


class MessageIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    correlation: dict[str, Any] | None = None
    business_key: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    time_to_live: str | None = Field(
        default=None, max_length=40,
        description="ISO 8601 duration (e.g. P45D): if nobody waits for the message yet, keep it "
                    "that long and deliver it, once, to the first instance that does.")


class Delivered(BaseModel):
    delivered_to: list[str]
    buffered: bool = False


class Incident(BaseModel):
    id: int
    instance_id: str
    element_id: str
    operator: str
    error: str = Field(description="What went wrong; the traceback is in the server log only.")
    attempts: int
    status: str
    created_at: IsoDateTime
    detached: bool = Field(False, description="An outbox job's (an e-mail): the case did not wait for it "
                                              "and has gone on; retry sends a fresh attempt, skip leaves it unsent.")


class Resolved(BaseModel):
    status: str


@router.post("/messages", tags=["messages"])
def message(body: MessageIn, actor: ActorDep, engine: EngineDep) -> Delivered:
    ttl = _duration(body.time_to_live) if body.time_to_live else None
    ids = engine.deliver_message(actor, body.name, body.payload, body.correlation,
                                 body.business_key, ttl=ttl)
    return Delivered(delivered_to=ids, buffered=ttl is not None and not ids)


def _duration(text: str) -> timedelta:
    from certflow.clock import ClockError, parse_duration

    try:
        return parse_duration(text)
    except (ClockError, OverflowError) as exc:
        raise InvalidInput(f"time_to_live: {exc}", field="time_to_live") from None


@router.get("/incidents", tags=["incidents"])
def incidents(actor: ActorDep, engine: EngineDep, status: str | None = "open") -> list[Incident]:
    return to_json(engine.incidents(actor, status))


@router.post("/incidents/{incident_id}/{action}", tags=["incidents"])
def resolve(incident_id: PathId, action: str, actor: ActorDep,
            engine: EngineDep) -> Resolved:
    return Resolved(status=engine.resolve_incident(actor, incident_id, action))
