"""Invoices and credit notes: the Dutch legal document, its PDF and its UBL e-invoice.

Used by the operators (handlers/invoicing.py):

``invoicing/create_invoice``
    input  ``{customer: str (username), product: str, quantity: int = 1,
             reference: str = "" (shown on the invoice, e.g. the application key),
             supply_date: "YYYY-MM-DD" | null = null (defaults to the issue date)}``
    result ``{invoice_id, invoice_number, payment_reference, net, vat, total, issue_date,
             due_date}`` (amounts as strings, "786.50"; dates ISO)
``invoicing/credit_note``
    input  ``{invoice_number: str, reason: str}``
    result the same shape for the credit note (negative amounts) plus
           ``credits_invoice_number``; the original's status becomes ``credited``.

Both are idempotent on ``ctx.idempotency_key`` (a unique column): a redelivered job gets the
document made the first time, and consumes no second number. Prices and VAT come from
``processes/shared/fees.dmn`` and ``vat.dmn`` for the supply date.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from certflow.i18n import Message, N_
from certflow.localtime import LOCAL_TZ as AMSTERDAM
from certflow.services.billing.fees import (
    FeeTableError,
    FeeTables,
    NoPriceError,
    cached_tables,
    deployed_tables,
)
from certflow.store.billing import Invoice, InvoiceLine
from certflow.store.models import User
from certflow.registry import HandlerContext, HandlerError, PermanentError
from certflow.settings import Settings
from certflow.services.billing.numbers import (
    format_number,
    lock_sequence,
    payment_reference,
    take_number,
)
from certflow.services.billing.pdf import PAYMENT_TERM_DAYS, render_pdf
from certflow.services.billing.totals import amount_text, price_line, totals
from certflow.services.billing.ubl import build_ubl

# Invoice dates are Dutch calendar dates: 23:30 UTC on 31 December is already next year.
REQUIRED_ADDRESS = ("street", "postal_code", "city")


class CreateInvoiceInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: str = Field(min_length=1, max_length=100)
    product: str = Field(min_length=1, max_length=100)
    quantity: int = Field(default=1, ge=1, le=999)
    reference: str = Field(default="", max_length=200)
    supply_date: date | None = None


class CreditNoteInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invoice_number: str = Field(min_length=1, max_length=20)
    reason: str = Field(min_length=1, max_length=500)


def local_date(moment: datetime) -> date:
    return moment.astimezone(AMSTERDAM).date()


def invoice_by_key(session: Session, key: str) -> Invoice | None:
    return session.execute(select(Invoice).where(Invoice.idempotency_key == key)).scalar_one_or_none()


def invoice_by_number(session: Session, number: str) -> Invoice | None:
    """The invoice, row-locked until the caller's transaction ends (crediting changes it)."""
    stmt = select(Invoice).where(Invoice.number == number.strip()).with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def _customer(session: Session, username: str) -> User:
    """The customer, refusing (permanently) one the invoice could not legally name."""
    user = session.get(User, username)
    if user is None:
        raise PermanentError(f"invoicing: customer {username!r} is unknown")
    missing = customer_problems(user)
    if missing:
        raise PermanentError(f"invoicing: customer {username!r} has no {', '.join(missing)}; "
                             "complete the account before invoicing")
    return user


def customer_problems(user: User) -> list[str]:
    """What the account lacks for an invoice that legally names it (empty when complete)."""
    address = user.address or {}
    missing = [f"address.{f}" for f in REQUIRED_ADDRESS if not str(address.get(f) or "").strip()]
    if not user.display_name.strip():
        missing.insert(0, "display_name")
    if user.customer_type == "organisation" and not (user.kvk_number or user.oin):
        # Its e-invoice goes over Peppol, which needs the KvK number or OIN as its address.
        missing.append("kvk_number or oin")
    return missing


def customer_identifiers(user: User) -> dict[str, str]:
    """The organisation's registrations the e-invoice names (none for a private person)."""
    if user.customer_type != "organisation":
        return {}
    found = {"kvk": user.kvk_number, "oin": user.oin, "vat_id": user.vat_id}
    return {key: value.strip() for key, value in found.items() if value and value.strip()}


def _result(invoice: Invoice) -> dict[str, Any]:
    credited = invoice.credits_invoice if invoice.kind == "credit_note" else None
    return _result_of(invoice, credited.number if credited is not None else None)


def _result_of(invoice: Any, credits_number: str | None) -> dict[str, Any]:
    """The handlers' result for an invoice (its row, or a row of its columns)."""
    result: dict[str, Any] = {
        "invoice_id": invoice.id,
        "invoice_number": invoice.number,
        "payment_reference": invoice.payment_reference,
        "net": amount_text(invoice.net_total),
        "vat": amount_text(invoice.vat_total),
        "total": amount_text(invoice.gross_total),
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
    }
    if invoice.kind == "credit_note" and credits_number is not None:
        result["credits_invoice_number"] = credits_number
    return result


_CREDITED = aliased(Invoice)
# Built once: what a result needs, not the whole row (its documents) as an object.
_RESULT_BY_KEY = (select(Invoice.id, Invoice.number, Invoice.payment_reference, Invoice.net_total,
                         Invoice.vat_total, Invoice.gross_total, Invoice.issue_date, Invoice.due_date,
                         Invoice.kind, _CREDITED.number.label("credits_number"))
                  .outerjoin(_CREDITED, _CREDITED.id == Invoice.credits_invoice_id)
                  .where(Invoice.idempotency_key == bindparam("key")))


def result_by_key(session: Session, key: str) -> dict[str, Any] | None:
    """The result of the invoice made under ``key`` before, or None: read as columns, for the
    common case of a handler run again, or of an instance of the fee run whose invoice the
    run's batch made (certflow.services.billing.batch)."""
    # On the session's connection: the ORM's execute (its compile state, an autoflush of
    # nothing: invoices are flushed as they are made) cost as much as the query.
    row = session.connection().execute(_RESULT_BY_KEY, {"key": key}).first()
    return None if row is None else _result_of(row, row.credits_number)


def _store(ctx: HandlerContext, invoice: Invoice) -> Invoice:
    """Number, insert and render ``invoice`` in the caller's transaction; or return the
    document an earlier run under the same key committed while we waited for the lock."""
    year = invoice.issue_date.year
    sequence = lock_sequence(ctx.session, year)
    earlier = invoice_by_key(ctx.session, ctx.idempotency_key)
    if earlier is not None:  # checked under the lock, before a number is taken
        return earlier
    seq = take_number(sequence)
    invoice.year, invoice.seq, invoice.number = year, seq, format_number(year, seq)
    invoice.payment_reference = payment_reference(year, seq)
    computed = totals(invoice.lines)
    invoice.net_total, invoice.vat_total = computed.net, computed.vat
    invoice.gross_total = computed.gross
    # Rendered before the row is written: one INSERT with the documents, not an INSERT and
    # an UPDATE that rewrites the row with them.
    invoice.pdf = render_pdf(invoice, ctx.settings)
    invoice.ubl_xml = build_ubl(invoice, ctx.settings)
    ctx.session.add(invoice)
    try:
        ctx.session.flush()
    except IntegrityError as exc:  # a concurrent run of this job won the race: retry finds it
        raise HandlerError(f"invoicing: concurrent insert for key {ctx.idempotency_key!r}") from exc
    return invoice


# The first write stands (see ensure_documents); built once, a Core statement: through the
# ORM's bulk UPDATE, built per invoice, it cost as much as storing the PDF.
_INVOICES = cast(Table, Invoice.__table__)
_STORE_DOCUMENTS = (update(_INVOICES)
                    .where(_INVOICES.c.id == bindparam("b_id"), _INVOICES.c.pdf.is_(None))
                    .values(pdf=bindparam("pdf"), ubl_xml=bindparam("ubl_xml")))


def ensure_documents(session: Session, invoice: Invoice, settings: Settings) -> Invoice:
    """Give ``invoice`` its PDF and UBL if it has none yet, and store them.

    Invoices made in bulk (certflow.services.billing.batch) are stored without: their
    documents are rendered here, once, where they are first needed (the invoice e-mail, a
    download), by whichever worker gets there, instead of one after another in the batch.
    Both are rendered from the stored invoice alone and byte-for-byte reproducible, so a
    second renderer racing the first writes the same bytes; the first write stands."""
    if invoice.pdf is not None and invoice.ubl_xml is not None:
        return invoice
    pdf, ubl = render_pdf(invoice, settings), build_ubl(invoice, settings)
    session.connection().execute(_STORE_DOCUMENTS, {"b_id": invoice.id, "pdf": pdf, "ubl_xml": ubl})
    set_committed_value(invoice, "pdf", pdf)
    set_committed_value(invoice, "ubl_xml", ubl)
    return invoice


def _new_invoice(ctx: HandlerContext, user: User, data: CreateInvoiceInput) -> Invoice:
    try:
        tables = deployed_tables(ctx.session, ctx.settings.var_dir, ctx.settings.processes_dir)
    except FeeTableError as exc:
        raise PermanentError(f"invoicing: {exc}") from exc
    return build_invoice(ctx.idempotency_key, user, data, ctx.now, tables)


def build_invoice(key: str, user: User, data: CreateInvoiceInput, now: datetime,
                  tables: FeeTables) -> Invoice:
    """The invoice for ``data`` at the fee of its supply date, not yet numbered nor stored.
    Raises PermanentError when the tables have no price for it."""
    issue = local_date(now)
    supply = data.supply_date or issue
    try:
        price = tables.price(data.product, supply)
    except (NoPriceError, FeeTableError) as exc:
        raise PermanentError(f"invoicing: {exc}") from exc
    english = user.language == "en"
    description = price.description_en if english else price.description_nl
    priced = price_line(price, data.quantity)
    invoice = Invoice(
        idempotency_key=key, kind="invoice", customer_username=user.username,
        customer_name=user.display_name, customer_address=dict(user.address),
        customer_email=user.email, customer_type=user.customer_type,
        customer_identifiers=customer_identifiers(user),
        language="en" if english else "nl", issue_date=issue,
        supply_date=supply, due_date=issue + timedelta(days=PAYMENT_TERM_DAYS),
        description=description, reference=data.reference, currency="EUR", status="open",
        created_at=now,
    )
    invoice.lines.append(InvoiceLine(
        position=1, product=data.product, description=description, quantity=priced.quantity,
        unit_price=priced.unit_price, vat_inclusive=priced.vat_inclusive, unit_net=priced.unit_net,
        vat_rate=priced.vat_rate, vat_category=priced.vat_category, line_net=priced.line_net))
    return invoice


def create_invoice(ctx: HandlerContext, data: CreateInvoiceInput) -> dict[str, Any]:
    """Invoice ``customer`` for ``quantity`` x ``product`` at today's fee."""
    existing = result_by_key(ctx.session, ctx.idempotency_key)
    if existing is not None:
        return existing
    user = _customer(ctx.session, data.customer)
    return _result(_store(ctx, _new_invoice(ctx, user, data)))


def _credit_for(ctx: HandlerContext, original: Invoice, reason: str) -> Invoice:
    """A mirror of ``original`` with negated amounts. A refund is owed only if it was paid."""
    issue = local_date(ctx.now)
    english = original.language == "en"
    prefix = "Credit note for invoice" if english else "Creditnota voor factuur"
    note = Invoice(
        idempotency_key=ctx.idempotency_key, kind="credit_note", credits_invoice=original,
        customer_username=original.customer_username, customer_name=original.customer_name,
        customer_address=dict(original.customer_address), customer_email=original.customer_email,
        customer_type=original.customer_type,
        customer_identifiers=dict(original.customer_identifiers or {}),
        language=original.language, issue_date=issue, supply_date=original.supply_date,
        due_date=issue, description=f"{prefix} {original.number}"[:300], note=reason,
        reference=original.reference, currency=original.currency,
        status="open" if original.status == "paid" else "paid", created_at=ctx.now,
    )
    for line in original.lines:
        note.lines.append(InvoiceLine(
            position=line.position, product=line.product, description=line.description,
            quantity=line.quantity, unit_price=-line.unit_price, vat_inclusive=line.vat_inclusive,
            unit_net=-line.unit_net, vat_rate=line.vat_rate, vat_category=line.vat_category,
            line_net=-line.line_net))
    return note


def credit_note(ctx: HandlerContext, data: CreditNoteInput) -> dict[str, Any]:
    """Reverse an invoice in full with a credit note; the original becomes ``credited``."""
    existing = invoice_by_key(ctx.session, ctx.idempotency_key)
    if existing is not None:
        return _result(existing)
    original = invoice_by_number(ctx.session, data.invoice_number)
    if original is None:
        raise PermanentError(f"invoicing: no invoice numbered {data.invoice_number!r}")
    # Again under the row lock: a concurrent run of this job may have just credited it.
    existing = invoice_by_key(ctx.session, ctx.idempotency_key)
    if existing is not None:
        return _result(existing)
    if original.kind != "invoice":
        raise PermanentError(f"invoicing: {original.number} is a credit note, not an invoice")
    if original.status in ("credited", "cancelled"):
        raise PermanentError(f"invoicing: invoice {original.number} is already {original.status}")
    note = _store(ctx, _credit_for(ctx, original, data.reason))
    original.status = "credited"
    ctx.session.flush()
    return _result(note)


def unknown_product(processes_dir: Path, product: str) -> str | None:
    """Why ``product`` cannot be invoiced (no fee in the shared table), or None."""
    known = cached_tables(processes_dir).products
    if product in known:
        return None
    return Message(N_("product %(product)r has no fee in processes/shared/fees.dmn (known: %(known)s)"),
                   product=product, known=", ".join(sorted(known)))
