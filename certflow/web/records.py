"""Records over HTTP: payments coming in (from a caller or a bank's CAMT.053 statement),
invoices and certificates going out as documents, and the public Register.

A payment is committed first and only then delivered to the process waiting on its invoice,
so a process that no longer waits never undoes money received. Registering is idempotent on
``external_id``; a retry that finds its invoice paid and a process still waiting (the first call
died between commit and delivery) delivers then.

No ``from __future__ import annotations``: FastAPI must resolve the route annotations, and
``ActorDep``/``EngineDep`` come from certflow.web.deps.
"""

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certflow.engine.errors import CertflowError, Conflict, Forbidden, InvalidInput, NotFound
from certflow.engine.facade import Actor, Engine
from certflow.web.deps import ActorDep, EngineDep
from certflow.store.billing import Invoice, Payment
from certflow.store.register import Certificate, CertificateCopy
from certflow.services.certificates import certificate_pdf
from certflow.services.payments import (
    ImportResult, PaymentOutcome, amount_received, import_camt053, open_payment_issues,
    register_payment,
)
from certflow.services.register import public_register

MAX_STATEMENT_BYTES = 5 * 1024 * 1024
XML_TYPES = ("application/xml", "text/xml")
MESSAGE = "payment_received"
MAX_AMOUNT = Decimal(10) ** 9
Delivery = tuple[str, dict[str, Any]]  # (invoice number, message payload)
InvoiceNumber = Annotated[str, Path(min_length=1, max_length=20)]


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


# -- payments ----------------------------------------------------------------------------------
def _staff(actor: Actor, what: str) -> None:
    if not actor.is_staff:
        raise Forbidden(f"only staff may {what}")


def _deliverable(session: Session, outcomes: Iterable[PaymentOutcome]) -> list[Delivery]:
    """The invoices to tell their process about: each one this call paid, plus (repair) each
    paid invoice a repeated payment names, in case the first call never got to deliver."""
    deliveries: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        if not o.invoice_number or o.invoice_number in deliveries:
            continue
        if not (o.invoice_paid or (o.duplicate and o.status == "matched")):
            continue
        invoice = session.scalar(select(Invoice).where(Invoice.number == o.invoice_number))
        if invoice is not None and invoice.status == "paid":
            deliveries[invoice.number] = {
                "amount": f"{amount_received(session, invoice):.2f}",
                "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None}
    return list(deliveries.items())


def _deliver(engine: Engine, actor: Actor, deliveries: list[Delivery]) -> list[dict[str, Any]]:
    """After commit. The payment stands whatever happens here."""
    results = []
    for number, payload in deliveries:
        try:
            ids = engine.deliver_message(actor, MESSAGE, payload, {"invoice_number": number})
            results.append({"invoice_number": number, "delivered": True, "instances": ids})
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
            return result, _deliverable(session, outcomes)
    except ValueError as exc:  # the handlers' word for bad input; rolled back, nothing written
        raise InvalidInput(str(exc)) from exc
    except IntegrityError as exc:  # the same external_id inserted concurrently
        raise Conflict("the same payment is being registered right now; retry") from exc


def record_payment(engine: Engine, actor: Actor, body: PaymentIn,
                   response: Response) -> dict[str, Any]:
    _staff(actor, "register payments")
    outcome, deliveries = _registering(engine, lambda s: register_payment(
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
    return {"payment": outcome.as_dict(), "delivered": False, "instances": [], "reason": reason}


async def _statement_body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in XML_TYPES:
        raise UnsupportedMediaType("send the CAMT.053 statement as application/xml, "
                                   f"not {media_type or 'nothing'!r}")
    too_large = PayloadTooLarge(f"statement is larger than {MAX_STATEMENT_BYTES // 2**20} MB")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_STATEMENT_BYTES:
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
        engine, lambda s: import_camt053(s, engine.now(), xml, actor.username))
    buckets = ("matched", "partial", "overpaid", "unmatched", "duplicates")
    out: dict[str, Any] = {"counts": {b: len(getattr(result, b)) for b in buckets}}
    out.update({b: [o.as_dict() for o in getattr(result, b)] for b in buckets})
    out["deliveries"] = _deliver(engine, actor, deliveries)
    return out


def payment_json(p: Payment) -> dict[str, Any]:
    return {"id": p.id, "status": p.status, "amount": money(p.amount), "currency": p.currency,
            "source": p.source, "external_id": p.external_id,
            "payment_reference": p.payment_reference, "payer_name": p.payer_name,
            "booked_date": _iso(p.booked_date),
            "invoice_number": p.invoice.number if p.invoice else None,
            "registered_by": p.registered_by, "created_at": p.created_at.isoformat()}


# -- invoices and certificates -------------------------------------------------------------------
def money(value: Decimal) -> str:
    return f"{value:.2f}"


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _document(content: bytes, media_type: str, filename: str) -> Response:
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


def invoice_of(session: Session, actor: Actor, number: str) -> Invoice:
    invoice = session.scalar(select(Invoice).where(Invoice.number == number.strip()))
    if invoice is None:
        raise NotFound(f"no invoice {number!r}")
    if not actor.is_staff and invoice.customer_username != actor.username:
        raise Forbidden(f"invoice {number} is not yours")
    return invoice


def invoice_json(session: Session, i: Invoice) -> dict[str, Any]:
    return {
        "number": i.number, "kind": i.kind, "status": i.status, "customer": i.customer_username,
        "customer_name": i.customer_name, "customer_address": i.customer_address,
        "issue_date": _iso(i.issue_date), "supply_date": _iso(i.supply_date),
        "due_date": _iso(i.due_date), "description": i.description, "reference": i.reference,
        "currency": i.currency, "net_total": money(i.net_total), "vat_total": money(i.vat_total),
        "gross_total": money(i.gross_total), "amount_received": money(amount_received(session, i)),
        "payment_reference": i.payment_reference, "paid_at": _iso(i.paid_at),
        "credits_invoice_number": i.credits_invoice.number if i.credits_invoice else None,
        "lines": [{"position": ln.position, "product": ln.product, "description": ln.description,
                   "quantity": ln.quantity, "unit_price": money(ln.unit_price),
                   "vat_inclusive": ln.vat_inclusive, "unit_net": str(ln.unit_net),
                   "vat_rate": str(ln.vat_rate), "vat_category": ln.vat_category,
                   "line_net": money(ln.line_net)} for ln in i.lines],
    }


def invoice_document(engine: Engine, actor: Actor, number: str, kind: str) -> Response:
    with engine.session() as session:
        invoice = invoice_of(session, actor, number)
        content = invoice.pdf if kind == "pdf" else (invoice.ubl_xml or "").encode() or None
    if content is None:
        raise NotFound(f"invoice {number} has no {kind.upper()} document")
    if kind == "pdf":
        return _document(content, "application/pdf", f"invoice-{invoice.number}.pdf")
    return _document(content, "application/xml", f"invoice-{invoice.number}.xml")


def certificates_of(engine: Engine, actor: Actor, holder: str | None) -> list[dict[str, Any]]:
    if not actor.is_staff and holder not in (None, actor.username):
        raise Forbidden("you may only list your own certificates")
    query = select(Certificate).order_by(Certificate.valid_from.desc(),
                                         Certificate.register_number).limit(500)
    if holder or not actor.is_staff:
        query = query.where(Certificate.holder == (holder or actor.username))
    with engine.session() as session:
        certs = session.scalars(query).all()
        copies = session.execute(
            select(CertificateCopy.certificate_id, CertificateCopy.language)
            .where(CertificateCopy.certificate_id.in_([c.id for c in certs]))).all()
    return [{"id": c.id, "holder": c.holder, "register_number": c.register_number,
             "level": c.level, "specialisation": c.specialisation, "status": c.status,
             "valid_from": _iso(c.valid_from), "valid_until": _iso(c.valid_until),
             "languages": sorted({c.language} | {lang for cid, lang in copies if cid == c.id})}
            for c in certs]


def certificate_document(engine: Engine, actor: Actor, certificate_id: str,
                         language: str | None) -> Response:
    with engine.session() as session:
        cert = session.get(Certificate, certificate_id)
        if cert is None:
            raise NotFound(f"no certificate {certificate_id!r}")
        if not actor.is_staff and cert.holder != actor.username:
            raise Forbidden(f"certificate {certificate_id} is not yours")
        try:
            pdf = certificate_pdf(session, certificate_id, language)
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        return _document(pdf, "application/pdf",
                         f"{cert.register_number}-{language or cert.language}.pdf")


# -- the routes ----------------------------------------------------------------------------------
def router() -> APIRouter:  # noqa: C901 - one thin route per line of the API
    """The routes, bound to app.py's authentication and engine dependencies (overridable)."""

    r = APIRouter()
    xml_body = {"requestBody": {"required": True, "content": {
        m: {"schema": {"type": "string"}} for m in XML_TYPES}}}

    @r.post("/api/payments", status_code=201, tags=["payments"])
    def post_payment(body: PaymentIn, response: Response, actor: ActorDep,
                     engine: EngineDep) -> Any:
        """Register a payment (staff); a matched one is delivered as `payment_received`."""
        return record_payment(engine, actor, body, response)

    @r.post("/api/payments/camt053", tags=["payments"], openapi_extra=xml_body)
    async def post_camt053(request: Request, actor: ActorDep, engine: EngineDep) -> Any:
        """Import a CAMT.053 bank statement (staff, XML body up to 5 MB)."""
        _staff(actor, "import bank statements")
        xml = await _statement_body(request)
        return await run_in_threadpool(import_statement, engine, actor, xml)

    @r.get("/api/payments/issues", tags=["payments"])
    def payment_issues(actor: ActorDep, engine: EngineDep) -> Any:
        """The office queue: unmatched, partial and overpaid payments, oldest first."""
        _staff(actor, "see the payment queue")
        with engine.session() as session:
            return [payment_json(p) for p in open_payment_issues(session)]

    @r.get("/api/invoices/{number}", tags=["invoices"])
    def get_invoice(actor: ActorDep, engine: EngineDep, number: InvoiceNumber) -> Any:
        with engine.session() as session:
            return invoice_json(session, invoice_of(session, actor, number))

    @r.get("/api/invoices/{number}/pdf", tags=["invoices"], response_class=Response)
    def get_invoice_pdf(actor: ActorDep, engine: EngineDep, number: InvoiceNumber) -> Response:
        return invoice_document(engine, actor, number, "pdf")

    @r.get("/api/invoices/{number}/ubl", tags=["invoices"], response_class=Response)
    def get_invoice_ubl(actor: ActorDep, engine: EngineDep, number: InvoiceNumber) -> Response:
        return invoice_document(engine, actor, number, "ubl")

    @r.get("/api/certificates", tags=["certificates"])
    def get_certificates(actor: ActorDep, engine: EngineDep,
                         holder: str | None = Query(default=None, max_length=100)) -> Any:
        return certificates_of(engine, actor, holder)

    @r.get("/api/certificates/{certificate_id}/pdf", tags=["certificates"],
           response_class=Response)
    def get_certificate_pdf(certificate_id: str, actor: ActorDep, engine: EngineDep,
                            language: Literal["nl", "en"] | None = None) -> Response:
        return certificate_document(engine, actor, certificate_id, language)

    @r.get("/public/register", tags=["public"])
    def get_public_register(engine: EngineDep,
                            q: str | None = Query(default=None, max_length=100)) -> Any:
        """The public Register: name, register number, status and validity only (no login)."""
        with engine.session() as session:
            return public_register(session, q)

    return r
