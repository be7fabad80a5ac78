"""Response models the API routers share: the facade's DTOs as typed JSON, so /openapi.json
says what each route returns. Datetimes are written with ``isoformat()`` (``+00:00``), as
the API always has."""

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, PlainSerializer

IsoDateTime = Annotated[datetime, PlainSerializer(lambda v: v.isoformat(), return_type=str)]
IsoDate = Annotated[date, PlainSerializer(lambda v: v.isoformat(), return_type=str)]


class Task(BaseModel):
    id: str
    instance_id: str
    process_id: str
    business_key: str
    element_id: str
    title: str
    candidate_group: str | None
    assignee: str | None
    form: str | None
    form_schema: dict[str, Any] | None
    priority: int
    due_at: IsoDateTime | None
    created_at: IsoDateTime
    overdue: bool
    context: dict[str, Any]
    escalation_level: int = 0
    next_escalation_at: IsoDateTime | None = None
    escalated_to: str | None = None
    escalated_at: IsoDateTime | None = None
    personal: bool = False


class Instance(BaseModel):
    id: str
    process_id: str
    version: int
    business_key: str
    status: str
    has_incident: bool
    next_due_at: IsoDateTime | None
    created_at: IsoDateTime
    updated_at: IsoDateTime
    started_by: str
    data: dict[str, Any]
    open_tasks: list[Task]
    waiting_for: list[str]


class Error(BaseModel):
    """Every refusal: ``error`` says what was wrong; other keys give details (``fields``...)."""

    error: str
