"""The office's payments to look at (the page /payments): every payment that did not settle an
invoice by itself (unmatched, partial, overpaid) and is not handled yet, oldest first, each
with the invoice it is for where known; one payment as its page shows it; and marking one
handled with a note, which takes it out of the queue.

Payer names and amounts are personal data: staff who see case data only
(``certflow.roles.sees_case_data``), as the list of who has not paid. Settling money
(registering, importing, linking) is certflow.services.payments'; nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from certflow.errors import Conflict, Forbidden, InvalidInput, NotFound
from certflow.i18n import N_, Message
from certflow.roles import sees_case_data
from certflow.services.payments import ISSUES, find_invoice, open_payment_issues
from certflow.services.viewer import Member
from certflow.store.billing import Invoice, Payment

MAX_LIST = 500
MAX_NOTE = 500


@dataclass(frozen=True)
class InvoiceFacts:
    """What the office checks a payment against: who, what for, how much, how much is in."""

    number: str
    customer: str
    customer_name: str
    description: str
    gross_total: Decimal
    received: Decimal
    status: str  # open | paid | cancelled | credited
    due_date: date

    @property
    def outstanding(self) -> Decimal:
        return max(self.gross_total - self.received, Decimal("0.00")) if self.status == "open" else Decimal("0.00")


@dataclass(frozen=True)
class QueuedPayment:
    id: int
    status: str  # matched | partial | unmatched | overpaid
    amount: Decimal
    currency: str
    source: str  # staff | api | camt
    payer_name: str
    reference: str  # what the payer quoted
    booked_date: date | None
    created_at: datetime
    registered_by: str
    invoice: InvoiceFacts | None
    linked_by: str | None
    linked_at: datetime | None
    handled_by: str | None
    handled_at: datetime | None
    handled_note: str

    @property
    def in_queue(self) -> bool:
        return self.status in ISSUES and self.handled_at is None


def require_case_data(viewer: Member, what: str) -> None:
    """Payers and amounts: for the staff who see case data, not a process owner or mentor."""
    if not sees_case_data(viewer):
        raise Forbidden(Message(N_("only staff may %(what)s"), what=Message(what)))


def _received(session: Session, invoice_ids: set[int]) -> dict[int, Decimal]:
    if not invoice_ids:
        return {}
    rows = session.execute(select(Payment.invoice_id, func.sum(Payment.amount)).where(
        Payment.invoice_id.in_(invoice_ids), Payment.status.in_(("matched", "partial")))
        .group_by(Payment.invoice_id)).all()
    return {invoice_id: Decimal(total) for invoice_id, total in rows}


def _facts(invoice: Invoice | None, received: dict[int, Decimal]) -> InvoiceFacts | None:
    if invoice is None:
        return None
    return InvoiceFacts(invoice.number, invoice.customer_username, invoice.customer_name,
                        invoice.description, invoice.gross_total,
                        received.get(invoice.id, Decimal("0.00")).quantize(Decimal("0.01")),
                        invoice.status, invoice.due_date)


def _view(p: Payment, received: dict[int, Decimal]) -> QueuedPayment:
    return QueuedPayment(p.id, p.status, p.amount, p.currency, p.source, p.payer_name, p.payment_reference,
                         p.booked_date, p.created_at, p.registered_by, _facts(p.invoice, received),
                         p.linked_by, p.linked_at, p.handled_by, p.handled_at, p.handled_note)


def _views(session: Session, payments: list[Payment]) -> list[QueuedPayment]:
    received = _received(session, {p.invoice_id for p in payments if p.invoice_id is not None})
    return [_view(p, received) for p in payments]


def queue(session: Session, viewer: Member) -> list[QueuedPayment]:
    """The payments to look at, oldest first (the first ``MAX_LIST``)."""
    require_case_data(viewer, N_("see the payments to match"))
    return _views(session, open_payment_issues(session)[:MAX_LIST])


def waiting_count(session: Session, viewer: Member) -> int:
    """How many payments wait for the office (the dashboard's figure): one count."""
    require_case_data(viewer, N_("see the payments to match"))
    return session.scalar(select(func.count()).select_from(Payment).where(
        Payment.status.in_(ISSUES), Payment.handled_at.is_(None))) or 0


def payment(session: Session, viewer: Member, payment_id: int) -> QueuedPayment:
    """One payment, in the queue or not (a link to it outlives its being settled)."""
    require_case_data(viewer, N_("see the payments to match"))
    found = session.scalar(select(Payment).options(joinedload(Payment.invoice)).where(Payment.id == payment_id))
    if found is None:
        raise NotFound(Message(N_("There is no payment %(id)s."), id=payment_id))
    [view] = _views(session, [found])
    return view


def by_id(session: Session, viewer: Member, ids: list[int]) -> dict[int, QueuedPayment]:
    """Several payments at once (what a statement's import booked), by id."""
    require_case_data(viewer, N_("see the payments to match"))
    if not ids:
        return {}
    found = list(session.scalars(select(Payment).options(joinedload(Payment.invoice)).where(Payment.id.in_(ids))))
    return {view.id: view for view in _views(session, found)}


def named_invoice(session: Session, viewer: Member, text: str) -> str | None:
    """The number of the invoice that ``text`` names (its number, or its 16-digit payment
    reference as people type it), or None: what the office types on a payment by hand."""
    require_case_data(viewer, N_("register payments"))
    text = text.strip()
    found = find_invoice(session, invoice_number=text, lock=False) or \
        find_invoice(session, payment_reference=text, lock=False)
    return found.number if found is not None else None


def mark_handled(session: Session, now: datetime, viewer: Member, payment_id: int,
                 note: str) -> QueuedPayment:
    """Take a payment out of the queue: the office dealt with it outside certflow (refunded
    an overpayment, sent back money that was not for us) and says how in ``note``. Its status
    stays what the money did. The payment is locked and read again, so a colleague who marked
    it, or an import that settled it, meanwhile is a Conflict, not a second note."""
    require_case_data(viewer, N_("mark payments handled"))
    note = note.strip()
    if not note:
        raise InvalidInput(Message(N_("Say what was done, for example: refunded to the payer on 12 March.")),
                           field="note")
    if len(note) > MAX_NOTE:
        raise InvalidInput(Message(N_("Use at most %(n)s characters."), n=MAX_NOTE), field="note")
    found = session.execute(select(Payment).where(Payment.id == payment_id).with_for_update()
                            .execution_options(populate_existing=True)).scalar_one_or_none()
    if found is None:
        raise NotFound(Message(N_("There is no payment %(id)s."), id=payment_id))
    if found.status not in ISSUES or found.handled_at is not None:
        raise Conflict(Message(N_("This payment is no longer in the queue: it was settled or handled meanwhile.")),
                       field="note")
    found.handled_by, found.handled_at, found.handled_note = viewer.username, now, note
    session.flush()
    return _views(session, [found])[0]

