"""Payments coming in through the API: registered by a caller, or imported from a bank's
CAMT.053 statement; and the office's queue of payments that matched no invoice exactly and
were not handled yet (staff only).

What happens to the money is certflow.web.incoming_payments' (shared with the office's pages):
a payment is committed first and only then delivered to the process waiting on its invoice,
so a process that no longer waits never undoes money received. Registering is idempotent on
``external_id``; a retry that finds its invoice paid and a process still waiting (the first call
died between commit and delivery) delivers then. Here: the bodies, the checks and the answers.
"""

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from certflow.engine.facade import Actor, Engine
from certflow.errors import CertflowError, InvalidInput
from certflow.services import payments
from certflow.services.viewer import require_staff
from certflow.web import incoming_payments
from certflow.web.deps import ActorDep, EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api/payments", tags=["payments"], route_class=JsonRoute)

MAX_STATEMENT_BYTES = incoming_payments.MAX_STATEMENT_BYTES
XML_TYPES = ("application/xml", "text/xml")
MAX_AMOUNT = Decimal(10) ** 9
BUFFERED = "True when no process waited yet: the payment is kept and delivered when one does."


class PayloadTooLarge(CertflowError):
    status = 413


class UnsupportedMediaType(CertflowError):
    status = 415


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invoice_number: str | None = Field(default=None, min_length=1, max_length=20)
    payment_reference: str | None = Field(default=None, min_length=1, max_length=2000)
    amount: str = Field(description='Decimal string in euros with at most 2 decimals: "786.50"')
    external_id: str = Field(min_length=1, max_length=200,
                             description="The caller's id for this payment; a retry reuses it.")
    payer_name: str = Field(default="", max_length=200)
    booked_date: date | None = None
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str) -> str:
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f'not a decimal amount: {value!r} (write e.g. "786.50")') from None
        if not (amount.is_finite() and 0 < amount < MAX_AMOUNT) or amount % Decimal("0.01"):
            raise ValueError(f"must be a positive amount in whole cents, got {value!r}")
        return f"{amount:.2f}"

    @model_validator(mode="after")
    def _something_to_match_on(self) -> "PaymentIn":
        if not (self.invoice_number or self.payment_reference):
            raise ValueError("give invoice_number or payment_reference to match the payment on")
        return self


class Outcome(BaseModel):
    """One payment as registered: matched to an invoice, or why not."""

    payment_id: int
    status: str = Field(description="matched | partial | unmatched | overpaid")
    amount: str
    invoice_number: str | None
    invoice_paid: bool = Field(description="this payment completed the invoice")
    duplicate: bool
    source: str
    external_id: str


class Registered(BaseModel):
    payment: Outcome
    delivered: bool
    instances: list[str]
    reason: str | None = None
    buffered: bool | None = Field(default=None, description=BUFFERED)


class DeliveryResult(BaseModel):
    invoice_number: str
    delivered: bool
    instances: list[str] | None = None
    reason: str | None = None
    buffered: bool | None = Field(default=None, description=BUFFERED)


class Counts(BaseModel):
    matched: int
    partial: int
    overpaid: int
    unmatched: int
    duplicates: int


class Imported(BaseModel):
    counts: Counts
    matched: list[Outcome]
    partial: list[Outcome]
    overpaid: list[Outcome]
    unmatched: list[Outcome]
    duplicates: list[Outcome]
    deliveries: list[DeliveryResult]


class Payment(BaseModel):
    id: int
    status: str
    amount: str
    currency: str
    source: str
    external_id: str
    payment_reference: str
    payer_name: str
    booked_date: str | None
    invoice_number: str | None
    registered_by: str
    created_at: str


# -- the answers: what certflow.web.incoming_payments did, as JSON ---------------------------------
def record_payment(engine: Engine, actor: Actor, body: PaymentIn,
                   response: Response) -> dict[str, Any]:
    require_staff(actor, "register payments")
    recorded = incoming_payments.record(
        engine, actor, invoice_number=body.invoice_number, payment_reference=body.payment_reference,
        amount=Decimal(body.amount), source="api", external_id=body.external_id,
        payer_name=body.payer_name, booked_date=body.booked_date, currency=body.currency)
    outcome, sent = recorded.outcome, recorded.told
    response.status_code = 200 if outcome.duplicate else 201
    if sent is not None and sent.delivered:
        return {"payment": outcome.as_dict(), "delivered": True, "instances": sent.instances}
    if outcome.duplicate:
        reason = f"payment {outcome.external_id!r} was registered before: nothing new to deliver"
    else:
        reason = (sent.reason if sent else None) or f"payment is {outcome.status}: the invoice is not paid by it"
    return {"payment": outcome.as_dict(), "delivered": False, "instances": [], "reason": reason,
            **({"buffered": True} if sent is not None and sent.buffered else {})}


async def _statement_body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in XML_TYPES:
        raise UnsupportedMediaType("send the CAMT.053 statement as application/xml, "
                                   f"not {media_type or 'nothing'!r}")
    too_large = PayloadTooLarge(f"statement is larger than {MAX_STATEMENT_BYTES // 2**20} MB")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_STATEMENT_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():  # a chunked body has no length to check up front
        body += chunk
        if len(body) > MAX_STATEMENT_BYTES:
            raise too_large
    if not body.strip():
        raise InvalidInput("the request body is empty; send the CAMT.053 XML")
    return bytes(body)


def import_statement(engine: Engine, actor: Actor, xml: bytes) -> dict[str, Any]:
    imported = incoming_payments.import_statement(engine, actor, xml)
    buckets = ("matched", "partial", "overpaid", "unmatched", "duplicates")
    out: dict[str, Any] = {"counts": {b: len(getattr(imported.result, b)) for b in buckets}}
    out.update({b: [o.as_dict() for o in getattr(imported.result, b)] for b in buckets})
    out["deliveries"] = [told.as_dict() for told in imported.told]
    return out


# -- the routes ------------------------------------------------------------------------------------
XML_BODY = {"requestBody": {"required": True, "content": {
    m: {"schema": {"type": "string"}} for m in XML_TYPES}}}


# exclude_unset: ``reason`` and ``instances`` appear only when they say something.
@router.post("", status_code=201, response_model_exclude_unset=True,
             responses={200: {"model": Registered, "description": "registered before"}})
def post_payment(body: PaymentIn, response: Response, actor: ActorDep,
                 engine: EngineDep) -> Registered:
    """Register a payment (staff); a matched one is delivered as `payment_received`."""
    return Registered.model_validate(record_payment(engine, actor, body, response))


@router.post("/camt053", openapi_extra=XML_BODY, response_model_exclude_unset=True)
async def post_camt053(request: Request, actor: ActorDep, engine: EngineDep) -> Imported:
    """Import a CAMT.053 bank statement (staff, XML body up to 5 MB)."""
    require_staff(actor, "import bank statements")
    xml = await _statement_body(request)
    return Imported.model_validate(await run_in_threadpool(import_statement, engine, actor, xml))


@router.get("/issues")
def payment_issues(actor: ActorDep, engine: EngineDep) -> list[Payment]:
    """The office queue: unmatched, partial and overpaid payments, oldest first."""
    with engine.session() as session:
        return [Payment.model_validate(p) for p in payments.payment_issues(session, actor)]
