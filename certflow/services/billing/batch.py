"""Many invoices in one go: the yearly fee run's invoices, a batch per transaction.

``create_invoices`` makes the invoices of a batch the way ``create_invoice`` makes one (same
customer checks, prices, amounts, numbers and keys), but with one lock on the year's sequence,
one read of the customers and of the fee tables, and two bulk INSERTs (invoices, lines)
instead of a dozen statements per invoice.

Exactly once, and numbers stay gapless: the sequence row is locked first, the keys already
invoiced are then read under that lock (a single ``create_invoice`` with the same key checks
under the same lock, so the two never both insert), and the rest take consecutive numbers in
the caller's transaction: a rollback gives all of them back. The unique key is the last guard.

The documents are not rendered here: each invoice's PDF and UBL are made once, by
``ensure_documents``, where they are first needed (the invoice e-mail attaches them), so the
batch holds the sequence lock for milliseconds and the rendering spreads over the workers.
An order whose customer could not be invoiced (no address, unknown) is left out and named in
the result: its own ``create_invoice`` refuses it with the reason, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from certflow.registry import PermanentError
from certflow.services.billing.fees import deployed_tables
from certflow.services.billing.invoices import (
    CreateInvoiceInput,
    build_invoice,
    customer_problems,
    local_date,
)
from certflow.services.billing.numbers import format_number, lock_sequence, payment_reference
from certflow.services.billing.totals import totals
from certflow.settings import Settings
from certflow.store.billing import Invoice, InvoiceLine
from certflow.store.models import User

_INVOICE_COLUMNS = (
    "idempotency_key", "kind", "customer_username", "customer_name", "customer_address",
    "customer_email", "customer_type", "customer_identifiers", "language", "issue_date",
    "supply_date", "due_date", "description", "reference", "currency", "status", "created_at",
)
_LINE_COLUMNS = ("position", "product", "description", "quantity", "unit_price", "vat_inclusive",
                 "unit_net", "vat_rate", "vat_category", "line_net")


@dataclass(frozen=True)
class Order:
    """One invoice to make, under its idempotency key."""

    key: str
    data: CreateInvoiceInput


@dataclass
class BatchResult:
    created: dict[str, str] = field(default_factory=dict)  # key -> number, made now
    existing: int = 0  # keys invoiced before (a retried batch)
    refused: dict[str, str] = field(default_factory=dict)  # key -> why (left to create_invoice)


def create_invoices(session: Session, now: datetime, settings: Settings,
                    orders: Sequence[Order]) -> BatchResult:
    """Make the invoices of ``orders`` not made before, in the caller's transaction."""
    result = BatchResult()
    if not orders:
        return result
    tables = deployed_tables(session, settings.var_dir, settings.processes_dir)
    draft: list[Invoice] = []
    year = local_date(now).year  # the issue date's, as create_invoice numbers it
    sequence = lock_sequence(session, year)
    keys = [o.key for o in orders]
    done = set(session.scalars(select(Invoice.idempotency_key).where(Invoice.idempotency_key.in_(keys))))
    result.existing = len(done)
    wanted = {o.data.customer for o in orders if o.key not in done}
    users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(wanted)))}
    for order in orders:
        if order.key in done:
            continue
        done.add(order.key)  # the same key twice in one batch is one invoice
        user = users.get(order.data.customer)
        problems = ["an account"] if user is None else customer_problems(user)
        if problems:
            result.refused[order.key] = f"customer {order.data.customer!r} has no {', '.join(problems)}"
            continue
        assert user is not None
        try:
            draft.append(build_invoice(order.key, user, order.data, now, tables))
        except PermanentError as exc:
            result.refused[order.key] = str(exc)
    if not draft:
        return result
    first = sequence.last_seq + 1
    sequence.last_seq += len(draft)
    session.flush()  # the sequence row: numbers are taken in this transaction
    rows, lines = [], []
    for seq, invoice in enumerate(draft, start=first):
        computed = totals(invoice.lines)
        rows.append({**{c: getattr(invoice, c) for c in _INVOICE_COLUMNS},
                     "year": year, "seq": seq, "number": format_number(year, seq),
                     "payment_reference": payment_reference(year, seq), "net_total": computed.net,
                     "vat_total": computed.vat, "gross_total": computed.gross})
        result.created[invoice.idempotency_key] = format_number(year, seq)
    ids = dict(session.execute(insert(Invoice).returning(Invoice.idempotency_key, Invoice.id,
                                                         sort_by_parameter_order=True), rows).tuples().all())
    for invoice in draft:
        for line in invoice.lines:
            lines.append(_line_row(ids[invoice.idempotency_key], line))
    session.execute(insert(InvoiceLine), lines)
    return result


def _line_row(invoice_id: int, line: InvoiceLine) -> dict[str, Any]:
    return {"invoice_id": invoice_id, **{c: getattr(line, c) for c in _LINE_COLUMNS}}
