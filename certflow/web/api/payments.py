"""Payments coming in: registered by a caller, or imported from a bank's CAMT.053 statement;
and the office's queue of payments that matched no invoice exactly (staff only).

A payment is committed first and only then delivered to the process waiting on its invoice,
so a process that no longer waits never undoes money received. Registering is idempotent on
``external_id``; a retry that finds its invoice paid and a process still waiting (the first call
died between commit and delivery) delivers then.
"""

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certflow.engine.facade import Actor, Engine
from certflow.errors import CertflowError, Conflict, InvalidInput
from certflow.services import payments
from certflow.services.payments import Delivery, ImportResult
from certflow.services.viewer import require_staff
from certflow.web.deps import ActorDep, EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api/payments", tags=["payments"], route_class=JsonRoute)

MAX_STATEMENT_BYTES = 5 * 1024 * 1024
XML_TYPES = ("application/xml", "text/xml")
MESSAGE = "payment_received"
MAX_AMOUNT = Decimal(10) ** 9
# A payment can land before its process waits for it (the invoice email still sending): kept
# this long, and delivered once when the process reaches its wait (message buffering).
PAYMENT_TTL = timedelta(days=90)
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


# -- registering: one transaction, then delivery --------------------------------------------------
def _deliver(engine: Engine, actor: Actor, deliveries: list[Delivery]) -> list[dict[str, Any]]:
    """After commit. The payment stands whatever happens here."""
    results = []
    for number, payload in deliveries:
        try:
            ids = engine.deliver_message(actor, MESSAGE, payload, {"invoice_number": number},
                                         ttl=PAYMENT_TTL)
            if ids:
                results.append({"invoice_number": number, "delivered": True, "instances": ids})
            else:  # the process has not reached its wait yet (the invoice email still sending)
                results.append({"invoice_number": number, "delivered": False, "buffered": True,
                                "reason": f"no process waits for invoice {number} yet: the payment "
                                          f"is kept {PAYMENT_TTL.days} days and delivered when one does"})
        except CertflowError as exc:  # nobody waits (any more), or the diagram refused it
            results.append({"invoice_number": number, "delivered": False, "reason": exc.message})
    return results


def _registering(engine: Engine, work: Callable[[Session], Any]) -> tuple[Any, list[Delivery]]:
    """Run ``work`` in one transaction and collect what to deliver once it committed."""
    try:
        with engine.session() as session:
            result = work(session)
            batch = isinstance(result, ImportResult)
            outcomes = result.matched + result.duplicates if batch else [result]
            return result, payments.deliverable(session, outcomes)
    except ValueError as exc:  # the services' word for bad input; rolled back, nothing written
        raise InvalidInput(str(exc)) from exc
    except IntegrityError as exc:  # the same external_id inserted concurrently
        raise Conflict("the same payment is being registered right now; retry") from exc


def record_payment(engine: Engine, actor: Actor, body: PaymentIn,
                   response: Response) -> dict[str, Any]:
    require_staff(actor, "register payments")
    outcome, deliveries = _registering(engine, lambda s: payments.register_payment(
        s, engine.now(), invoice_number=body.invoice_number,
        payment_reference=body.payment_reference, amount=Decimal(body.amount), source="api",
        external_id=body.external_id, actor=actor.username, payer_name=body.payer_name,
        booked_date=body.booked_date, currency=body.currency))
    response.status_code = 200 if outcome.duplicate else 201
    [sent] = _deliver(engine, actor, deliveries) or [{"delivered": False}]
    if sent["delivered"]:
        return {"payment": outcome.as_dict(), "delivered": True, "instances": sent["instances"]}
    if outcome.duplicate:
        reason = f"payment {outcome.external_id!r} was registered before: nothing new to deliver"
    else:
        reason = sent.get("reason") or f"payment is {outcome.status}: the invoice is not paid by it"
    return {"payment": outcome.as_dict(), "delivered": False, "instances": [], "reason": reason,
            **({"buffered": True} if sent.get("buffered") else {})}


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
    result, deliveries = _registering(
        engine, lambda s: payments.import_camt053(s, engine.now(), xml, actor.username))
    buckets = ("matched", "partial", "overpaid", "unmatched", "duplicates")
    out: dict[str, Any] = {"counts": {b: len(getattr(result, b)) for b in buckets}}
    out.update({b: [o.as_dict() for o in getattr(result, b)] for b in buckets})
    out["deliveries"] = _deliver(engine, actor, deliveries)
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
