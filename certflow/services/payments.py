"""Payments received: registered by staff, reported through the API, or imported from the
bank's CAMT.053 statement, and matched to invoices.

Public functions (plain Python, called by the web and engine code; no operators here):

``register_payment(session, now, *, invoice_number=None | payment_reference=None, amount,
source, external_id, actor, payer_name="", booked_date=None, currency="EUR") -> PaymentOutcome``
``import_camt053(session, now, xml_bytes, actor) -> ImportResult``
``link_payment(session, now, payment_id, invoice_number, actor) -> PaymentOutcome``: the office
names the invoice of an unmatched payment, which is then settled as a matched one is.
``open_payment_issues(session) -> list[Payment]``; ``payment_issues(session, viewer)`` the
office queue as JSON (staff); ``deliverable(session, outcomes)`` the invoices to tell their
process about once the payments are committed. The office's page reads the queue through
certflow.services.payment_queue, where a payment is also marked handled.

A payment that completes its invoice marks it paid and says so (``invoice_paid`` with the
``invoice_number``): the caller then delivers the ``payment_received`` message to the process
waiting on that invoice; this module knows nothing of the engine. Everything else (too little,
no recognisable reference, an invoice already settled) stays in the payments table with its
status for the office queue. Registering is idempotent on (source, external_id), so a statement
imported twice, or an API call retried, changes nothing the second time. Nothing here commits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from certflow.errors import Conflict, InvalidInput, NotFound
from certflow.i18n import N_, Message
from certflow.services.viewer import Viewer, require_staff
from certflow.store.billing import Invoice, Payment
from certflow.services.camt import parse_camt053
from certflow.services.billing.numbers import is_valid_payment_reference

SOURCES = ("staff", "api", "camt")
ISSUES = ("unmatched", "partial", "overpaid")
_INVOICE_NUMBER = re.compile(r"(?<!\d)(\d{4}-\d{6})(?!\d)")
# 16 digits, optionally grouped by spaces or dots as people type them over.
_REFERENCE = re.compile(r"(?<!\d)(\d(?:[ .]?\d){15})(?!\d)")

# What a payment tells the processes: (invoice number, ``payment_received`` payload).
Delivery = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class PaymentOutcome:
    payment_id: int
    status: str  # matched | partial | unmatched | overpaid
    amount: Decimal
    invoice_number: str | None
    # True when THIS payment completed the invoice: deliver "payment_received" for it.
    invoice_paid: bool
    duplicate: bool
    source: str
    external_id: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "amount": f"{self.amount:.2f}"}


@dataclass
class ImportResult:
    matched: list[PaymentOutcome] = field(default_factory=list)
    unmatched: list[PaymentOutcome] = field(default_factory=list)
    partial: list[PaymentOutcome] = field(default_factory=list)
    duplicates: list[PaymentOutcome] = field(default_factory=list)
    overpaid: list[PaymentOutcome] = field(default_factory=list)

    def add(self, outcome: PaymentOutcome) -> None:
        bucket = "duplicates" if outcome.duplicate else outcome.status
        getattr(self, bucket).append(outcome)

    @property
    def paid_invoice_numbers(self) -> list[str]:
        """Invoices this import completed, each once: the messages to deliver."""
        return [o.invoice_number for o in self.matched if o.invoice_paid and o.invoice_number]


def _invoice(session: Session, *conditions: Any, lock: bool = True) -> Invoice | None:
    stmt = select(Invoice).where(*conditions)
    if lock:  # read again under the lock: the session may hold it as it was before the wait
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.execute(stmt).scalar_one_or_none()


def find_invoice(session: Session, *, invoice_number: str | None = None,
                 payment_reference: str | None = None, lock: bool = True) -> Invoice | None:
    """The invoice a payment is for: by number, else by a betalingskenmerk or invoice number
    found anywhere in the reference text (payers write "factuur 2026-000012" or the kenmerk
    in groups of four). Locked, since paying it changes its status (``lock=False``: only
    found, as ``import_camt053`` does before it locks them all)."""
    if invoice_number:
        return _invoice(session, Invoice.number == invoice_number.strip(), lock=lock)
    text = payment_reference or ""
    for match in _REFERENCE.finditer(text):
        digits = re.sub(r"\D", "", match.group(1))
        if is_valid_payment_reference(digits):
            found = _invoice(session, Invoice.payment_reference == digits, lock=lock)
            if found is not None:
                return found
    for match in _INVOICE_NUMBER.finditer(text):
        found = _invoice(session, Invoice.number == match.group(1), lock=lock)
        if found is not None:
            return found
    return None


def amount_received(session: Session, invoice: Invoice) -> Decimal:
    """What has come in for ``invoice`` so far (reminders can say what is still to pay)."""
    total = session.execute(select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.invoice_id == invoice.id, Payment.status.in_(("matched", "partial")))).scalar_one()
    return Decimal(total)


def _settle(session: Session, now: datetime, invoice: Invoice | None, amount: Decimal,
            currency: str) -> tuple[str, bool]:
    """(status, invoice just paid). Partial payments add up: the one that reaches the total
    pays the invoice and resolves the earlier partial ones."""
    if invoice is None or invoice.kind != "invoice" or currency != invoice.currency:
        return "unmatched", False
    if invoice.status != "open":
        return "overpaid", False
    if amount_received(session, invoice) + amount < invoice.gross_total:
        return "partial", False
    invoice.status, invoice.paid_at = "paid", now
    for earlier in session.execute(select(Payment).where(
            Payment.invoice_id == invoice.id, Payment.status == "partial")).scalars():
        earlier.status = "matched"
    return "matched", True


def _outcome(payment: Payment, invoice_paid: bool, duplicate: bool) -> PaymentOutcome:
    number = payment.invoice.number if payment.invoice is not None else None
    return PaymentOutcome(payment.id, payment.status, payment.amount, number, invoice_paid,
                          duplicate, payment.source, payment.external_id)


def _check(amount: Decimal, source: str, external_id: str) -> Decimal:
    if source not in SOURCES:
        raise ValueError(f"payment source must be one of {SOURCES}, got {source!r}")
    if not external_id.strip() or len(external_id) > 200:
        raise ValueError("payment external_id must be 1..200 characters")
    amount = Decimal(amount)
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"payment amount must be positive whole cents, got {amount}")
    return amount


def register_payment(session: Session, now: datetime, *, invoice_number: str | None = None,
                     payment_reference: str | None = None, amount: Decimal, source: str,
                     external_id: str, actor: str, payer_name: str = "",
                     booked_date: date | None = None, currency: str = "EUR") -> PaymentOutcome:
    """Record one payment and match it. The same (source, external_id) again returns the first
    outcome with ``duplicate=True`` and changes nothing. Two sessions inserting the same payment
    at the same moment: the second fails on the unique constraint at flush and rolls back."""
    amount = _check(amount, source, external_id)
    existing = session.execute(select(Payment).where(
        Payment.source == source, Payment.external_id == external_id)).scalar_one_or_none()
    if existing is not None:
        return _outcome(existing, invoice_paid=False, duplicate=True)
    invoice = find_invoice(session, invoice_number=invoice_number,
                           payment_reference=payment_reference)
    status, paid = _settle(session, now, invoice, amount, currency)
    payment = Payment(
        source=source, external_id=external_id, amount=amount, currency=currency,
        payment_reference=(payment_reference or invoice_number or "")[:2000],
        payer_name=payer_name[:200], booked_date=booked_date,
        invoice=invoice if status != "unmatched" else None, status=status,
        registered_by=actor, created_at=now)
    session.add(payment)
    session.flush()
    return _outcome(payment, invoice_paid=paid, duplicate=False)


def import_camt053(session: Session, now: datetime, xml_bytes: bytes, actor: str) -> ImportResult:
    """Register every incoming payment of a CAMT.053 statement. The whole file is parsed and
    checked first, so bad input raises ValueError with nothing written."""
    entries = parse_camt053(xml_bytes)
    # One lock order for every import, so that two at once wait for each other rather than
    # deadlock (each holding what the other wants next: statements paying the same invoices,
    # or sharing entries, in another order): first every invoice the statement pays, by id,
    # then the entries booked by their bank id (a payment's key is locked by its insert).
    # The outcomes are reported in the statement's order.
    invoices = {invoice.id for entry in entries
                if (invoice := find_invoice(session, payment_reference=entry.reference, lock=False))}
    if invoices:
        session.execute(select(Invoice.id).where(Invoice.id.in_(invoices)).order_by(Invoice.id).with_for_update())
    booked = {}
    for n in sorted(range(len(entries)), key=lambda n: entries[n].external_id):
        entry = entries[n]
        booked[n] = register_payment(
            session, now, payment_reference=entry.reference, amount=entry.amount, source="camt",
            external_id=entry.external_id, actor=actor, payer_name=entry.payer_name,
            booked_date=entry.booked_date, currency=entry.currency)
    result = ImportResult()
    for n in range(len(entries)):
        result.add(booked[n])
    return result


def link_payment(session: Session, now: datetime, payment_id: int, invoice_number: str,
                 actor: str) -> PaymentOutcome:
    """Settle an unmatched payment (its payer quoted nothing usable) against the invoice the
    office names, exactly as a payment that quoted it: it may pay the invoice (``invoice_paid``:
    deliver ``payment_received``), be partial, or be overpaid (the invoice was settled).

    Locks in the order every import takes (the invoice, then the payments), so a link while a
    statement pays the same invoice waits for it and then sees the invoice as it is; and
    the payment is read again under its lock, so a second click finds it linked (Conflict)
    instead of settling it twice. ``InvalidInput`` on ``invoice_number`` for an invoice that
    cannot take it; nothing is written then."""
    number = invoice_number.strip()
    invoice = find_invoice(session, invoice_number=number) if number else None
    payment = session.execute(select(Payment).where(Payment.id == payment_id).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one_or_none()
    if payment is None:
        raise NotFound(Message(N_("There is no payment %(id)s."), id=payment_id))
    if payment.status != "unmatched" or payment.handled_at is not None:
        raise Conflict(Message(N_("This payment is no longer waiting for an invoice: it was linked or "
                                  "handled meanwhile.")), field="invoice_number")
    if invoice is None:
        raise InvalidInput(Message(N_("There is no invoice %(number)s. Check the number on the invoice, "
                                      "such as 2026-000012."), number=number or "-"), field="invoice_number")
    if invoice.kind != "invoice":
        raise InvalidInput(Message(N_("%(number)s is a credit note, not an invoice: a payment cannot pay it."),
                                   number=invoice.number), field="invoice_number")
    if invoice.currency != payment.currency:
        raise InvalidInput(Message(N_("Invoice %(number)s is in %(invoice)s and the payment in %(payment)s."),
                                   number=invoice.number, invoice=invoice.currency,
                                   payment=payment.currency), field="invoice_number")
    payment.status, paid = _settle(session, now, invoice, payment.amount, payment.currency)
    payment.invoice, payment.linked_by, payment.linked_at = invoice, actor, now
    session.flush()
    return _outcome(payment, invoice_paid=paid, duplicate=False)


def open_payment_issues(session: Session) -> list[Payment]:
    """Payments the office must look at: unmatched, partial or overpaid and not handled,
    oldest first."""
    stmt = (select(Payment).where(Payment.status.in_(ISSUES), Payment.handled_at.is_(None))
            .order_by(Payment.created_at, Payment.id))
    return list(session.execute(stmt).scalars())



# -- what the office reads, and what a payment tells the processes -------------------------------
def payment_view(p: Payment) -> dict[str, Any]:
    return {"id": p.id, "status": p.status, "amount": f"{p.amount:.2f}", "currency": p.currency,
            "source": p.source, "external_id": p.external_id,
            "payment_reference": p.payment_reference, "payer_name": p.payer_name,
            "booked_date": p.booked_date.isoformat() if p.booked_date else None,
            "invoice_number": p.invoice.number if p.invoice else None,
            "registered_by": p.registered_by, "created_at": p.created_at.isoformat()}


def payment_issues(session: Session, viewer: Viewer) -> list[dict[str, Any]]:
    """The office queue: unmatched, partial and overpaid payments, oldest first (staff)."""
    require_staff(viewer, "see the payment queue")
    return [payment_view(p) for p in open_payment_issues(session)]


def deliverable(session: Session, outcomes: Iterable[PaymentOutcome]) -> list[Delivery]:
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
