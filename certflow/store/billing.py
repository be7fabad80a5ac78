"""Billing tables: invoices and credit notes, their lines, the yearly number sequence, and
payments received.

An invoice is a legal document: once committed its number, amounts, customer snapshot, PDF and
UBL never change; a mistake is corrected by a credit note (its own number, negative amounts).
Invoices are kept 7 years, so the customer's name and address are copied onto the invoice
rather than read from the user row, which may change or be erased.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from certflow.store.base import Base


class Scaled(TypeDecorator[Decimal]):
    """An exact Decimal stored as an integer count of 10**-places units.

    SQLite has no exact decimal type (it would round-trip through float and warn), and money
    must be exact on every backend; an integer of cents is exact everywhere.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, places: int = 2) -> None:
        super().__init__()
        self.places = places

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value).scaleb(self.places)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.places} decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value).scaleb(-self.places).quantize(Decimal(1).scaleb(-self.places))


def Money() -> Scaled:  # noqa: N802 - reads like a column type
    return Scaled(2)


class InvoiceSequence(Base):
    """The last number used per year. Its row is locked while an invoice takes a number, so
    numbers are gapless: a transaction that rolls back gives its number back."""

    __tablename__ = "invoice_sequences"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


DOCUMENTS = "documents"  # the deferred group of an invoice's PDF and UBL


class Invoice(Base):
    """An invoice (kind ``invoice``) or credit note (kind ``credit_note``, negative amounts).

    status: ``open`` (awaiting payment) | ``paid`` | ``cancelled`` | ``credited`` (a credit
    note reversed it). A credit note is ``paid`` when it settles an unpaid invoice (nothing
    changes hands) and ``open`` when a refund of a paid invoice is still owed.
    """

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("year", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The job's key: the same service task run twice yields this same invoice.
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20), default="invoice")
    credits_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_username: Mapped[str] = mapped_column(String(100), index=True)
    customer_name: Mapped[str] = mapped_column(String(200))
    # {"street", "postal_code", "city", "country"} as it was when the invoice was made.
    customer_address: Mapped[dict[str, Any]]
    customer_email: Mapped[str] = mapped_column(String(200), default="")
    # "person" or "organisation", and the organisation's {"kvk", "oin", "vat_id"}, as they were
    # when the invoice was made: they decide the e-invoice's Peppol addressing.
    customer_type: Mapped[str] = mapped_column(String(20), default="person",
                                               server_default="person")
    customer_identifiers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    language: Mapped[str] = mapped_column(String(5), default="nl")
    issue_date: Mapped[date] = mapped_column(Date)
    supply_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(300))
    # Shown on the invoice: the customer's or process's reference (e.g. the application key).
    reference: Mapped[str] = mapped_column(String(200), default="")
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    net_total: Mapped[Decimal] = mapped_column(Money())
    vat_total: Mapped[Decimal] = mapped_column(Money())
    gross_total: Mapped[Decimal] = mapped_column(Money())
    # The 16-digit Dutch betalingskenmerk, derived from the number (so unique with it).
    payment_reference: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    paid_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(Text, default="")
    # The documents (some 50 KB an invoice) are read when asked for, both at once: lists of
    # invoices (the dashboard's 500 unpaid ones, Mijn CMI, a bank statement's matching) use
    # the other columns. ``undefer_group(DOCUMENTS)`` reads them with the row.
    pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary), group=DOCUMENTS)
    ubl_xml: Mapped[str | None] = deferred(mapped_column(Text), group=DOCUMENTS)
    created_at: Mapped[datetime]

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position", cascade="all, delete-orphan"
    )
    credits_invoice: Mapped[Invoice | None] = relationship(remote_side=[id])


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    product: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    # The price as the fee table states it (incl. VAT when vat_inclusive).
    unit_price: Mapped[Decimal] = mapped_column(Money())
    vat_inclusive: Mapped[bool] = mapped_column(default=False)
    # Net unit price to 4 places: for VAT-inclusive prices it is derived, not round.
    unit_net: Mapped[Decimal] = mapped_column(Scaled(4))
    vat_rate: Mapped[Decimal] = mapped_column(Scaled(2))  # percent: 21.00
    vat_category: Mapped[str] = mapped_column(String(20))
    line_net: Mapped[Decimal] = mapped_column(Money())

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class Payment(Base):
    """Money received. Matched payments mark their invoice paid; the rest wait in the office
    queue (see certflow.services.payments.open_payment_issues).

    status: ``matched`` | ``partial`` (less than the invoice total so far) | ``unmatched`` (no
    invoice recognised) | ``overpaid`` (for an invoice already paid, credited or cancelled: a
    refund to decide on).

    Handled (``handled_at`` set, with who and a note): the office dealt with it outside
    certflow (an overpayment refunded, money that was not for us sent back) and it left the
    queue. A state beside the status, not a status of its own: a partial payment handled still
    counts towards its invoice, and the status still says what the money did.
    """

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # staff | api | camt
    source: Mapped[str] = mapped_column(String(20))
    # The bank's entry reference for camt, the caller's id otherwise: makes re-imports no-ops.
    external_id: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    # What the payer quoted (betalingskenmerk, invoice number or free text).
    payment_reference: Mapped[str] = mapped_column(Text, default="")
    payer_name: Mapped[str] = mapped_column(String(200), default="")
    booked_date: Mapped[date | None] = mapped_column(Date)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    registered_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    # The office named the invoice of a payment that quoted nothing usable (who, when).
    linked_by: Mapped[str | None] = mapped_column(String(100))
    linked_at: Mapped[datetime | None]
    handled_by: Mapped[str | None] = mapped_column(String(100))
    handled_at: Mapped[datetime | None]
    handled_note: Mapped[str] = mapped_column(Text, default="", server_default="")

    invoice: Mapped[Invoice | None] = relationship()
