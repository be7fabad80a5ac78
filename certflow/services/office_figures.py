"""The office dashboard's money and register figures: unpaid invoices and certificates that
expire soon, as counts (one aggregate query each) and as the lists behind them.

Staff only. "Unpaid" is an invoice (not a credit note) still ``open``; it is overdue once
its due date has passed. "Expiring" is a register entry whose certificate is valid (or being
recertified) and ends within the window: the people the recertification invitations are for.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from certflow.errors import Forbidden
from certflow.i18n import N_, Message
from certflow.roles import Asking, sees_case_data
from certflow.services.viewer import Viewer, require_staff
from certflow.store.billing import Invoice
from certflow.store.models import User
from certflow.store.register import RegisterEntry

EXPIRY_WINDOW_MONTHS = 4
LIVE_STATUSES = ("valid", "recertification_running")
MAX_LIST = 500


@dataclass(frozen=True)
class Receivables:
    count: int
    amount: Decimal
    overdue: int
    overdue_amount: Decimal


@dataclass(frozen=True)
class UnpaidInvoice:
    number: str
    customer: str
    customer_name: str
    description: str
    reference: str
    issue_date: date
    due_date: date
    amount: Decimal
    overdue: bool


@dataclass(frozen=True)
class Expiring:
    holder: str
    name: str
    register_number: str
    status: str
    valid_until: date


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day (31 January + 1 = 28/29 February)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _unpaid() -> list[ColumnElement[bool]]:
    return [Invoice.kind == "invoice", Invoice.status == "open"]


def receivables(session: Session, viewer: Viewer, today: date) -> Receivables:
    require_staff(viewer, "see unpaid invoices")
    late = Invoice.due_date < today
    count, amount, overdue, overdue_amount = session.execute(select(
        func.count(), func.sum(Invoice.gross_total), func.sum(case((late, 1), else_=0)),
        func.sum(case((late, Invoice.gross_total), else_=0)),
    ).where(*_unpaid())).one()
    return Receivables(int(count or 0), _money(amount), int(overdue or 0), _money(overdue_amount))


def _money(total: Decimal | None) -> Decimal:
    """SUM keeps the money column's type (exact cents); NULL when nothing was summed."""
    return total if total is not None else Decimal("0.00")


def unpaid_invoices(session: Session, viewer: Asking, today: date, overdue_only: bool = False) -> list[UnpaidInvoice]:
    """Oldest due first. Who owes money is personal data: staff who see case data only (a
    process owner sees the figures, ``receivables``, not the people)."""
    if not sees_case_data(viewer):
        raise Forbidden(Message(N_("only staff may %(what)s"), what=Message(N_("see who has not paid"))))
    query = select(Invoice).where(*_unpaid())
    if overdue_only:
        query = query.where(Invoice.due_date < today)
    rows = session.scalars(query.order_by(Invoice.due_date, Invoice.number).limit(MAX_LIST))
    return [UnpaidInvoice(i.number, i.customer_username, i.customer_name, i.description, i.reference, i.issue_date,
                          i.due_date, i.gross_total, i.due_date < today) for i in rows]


def _expiring_where(today: date, months: int) -> list[ColumnElement[bool]]:
    return [RegisterEntry.status.in_(LIVE_STATUSES), RegisterEntry.valid_until >= today,
            RegisterEntry.valid_until < add_months(today, months)]


def expiring_count(session: Session, viewer: Viewer, today: date, months: int = EXPIRY_WINDOW_MONTHS) -> int:
    require_staff(viewer, "see the register")
    return int(session.scalar(select(func.count()).select_from(RegisterEntry)
                              .where(*_expiring_where(today, months))) or 0)


def expiring_certificates(session: Session, viewer: Viewer, today: date,
                          months: int = EXPIRY_WINDOW_MONTHS) -> list[Expiring]:
    """Soonest first."""
    require_staff(viewer, "see the register")
    rows = session.execute(select(RegisterEntry, User.display_name).join(User, User.username == RegisterEntry.holder)
                           .where(*_expiring_where(today, months))
                           .order_by(RegisterEntry.valid_until, RegisterEntry.register_number).limit(MAX_LIST)).all()
    return [Expiring(e.holder, name, e.register_number, e.status, e.valid_until) for e, name in rows]
