"""What a person may read of invoices: one invoice as JSON, its PDF and its UBL e-invoice.

Staff read every invoice; anyone else only their own (the customer on it).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.errors import Forbidden, NotFound
from certflow.services.billing.invoices import ensure_documents
from certflow.services.documents import Document
from certflow.services.payments import amount_received
from certflow.services.viewer import Viewer
from certflow.settings import Settings, get_settings
from certflow.store.billing import Invoice
from certflow.i18n import Message, N_


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def invoice_for(session: Session, viewer: Viewer, number: str) -> Invoice:
    invoice = session.scalar(select(Invoice).where(Invoice.number == number.strip()))
    if invoice is None:
        raise NotFound(Message(N_("no invoice '%(number)s'"), number=number))
    if not viewer.is_staff and invoice.customer_username != viewer.username:
        raise Forbidden(Message(N_("invoice %(number)s is not yours"), number=number))
    return invoice


def invoice_view(session: Session, viewer: Viewer, number: str) -> dict[str, Any]:
    i = invoice_for(session, viewer, number)
    return {
        "number": i.number, "kind": i.kind, "status": i.status, "customer": i.customer_username,
        "customer_name": i.customer_name, "customer_address": i.customer_address,
        "issue_date": iso(i.issue_date), "supply_date": iso(i.supply_date),
        "due_date": iso(i.due_date), "description": i.description, "reference": i.reference,
        "currency": i.currency, "net_total": money(i.net_total), "vat_total": money(i.vat_total),
        "gross_total": money(i.gross_total), "amount_received": money(amount_received(session, i)),
        "payment_reference": i.payment_reference, "paid_at": iso(i.paid_at),
        "credits_invoice_number": i.credits_invoice.number if i.credits_invoice else None,
        "lines": [{"position": ln.position, "product": ln.product, "description": ln.description,
                   "quantity": ln.quantity, "unit_price": money(ln.unit_price),
                   "vat_inclusive": ln.vat_inclusive, "unit_net": str(ln.unit_net),
                   "vat_rate": str(ln.vat_rate), "vat_category": ln.vat_category,
                   "line_net": money(ln.line_net)} for ln in i.lines],
    }


def invoice_document(session: Session, viewer: Viewer, number: str,
                     kind: Literal["pdf", "ubl"], settings: Settings | None = None) -> Document:
    invoice = invoice_for(session, viewer, number)
    if invoice.kind in ("invoice", "credit_note"):
        # One made in bulk gets its documents on first need (the e-mail usually came first).
        ensure_documents(session, invoice, settings or get_settings())
    content = invoice.pdf if kind == "pdf" else (invoice.ubl_xml or "").encode() or None
    if content is None:
        raise NotFound(Message(N_("invoice %(number)s has no %(kind)s document"), number=number, kind=kind.upper()))
    if kind == "pdf":
        return Document(content, "application/pdf", f"invoice-{invoice.number}.pdf")
    return Document(content, "application/xml", f"invoice-{invoice.number}.xml")
