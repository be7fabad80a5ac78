"""The yearly register fee: who owes it for a year, their invoices, one message per professional.

Used by the operators (handlers/register_fee.py)
------------------------------------------------
``register_fee/fan_out``
    input:  ``{year: int | None = None, due: datetime | None = None, batch_size: int = 1000}``;
    without ``year`` the fee year is ``reference_year`` of ``due`` (when the yearly timer's
    period was due: a run that fires late invoices the year it was due for), else of now.
    result: ``{year, reference_date, count, queued}``: ``count`` professionals were in the
    register on the reference date (1 January of ``year``); ``queued`` of them got a new
    ``register_fee_due`` message in this run (0 when the year was already done).
    Per batch of holders it also makes their fee invoices in bulk
    (certflow.services.billing.batch: one lock, two INSERTs), under the very keys
    ``register_fee/create_invoice`` uses, so each instance's own task finds its invoice made;
    the PDF and UBL are rendered when the invoice e-mail first needs them.
``register_fee/create_invoice``
    input:  ``{holder: str (username), year: int}``
    result: as ``invoicing/create_invoice`` (``invoice_id, invoice_number, payment_reference,
    net, vat, total, issue_date, due_date``).
    The fee invoice (product ``register_fee``, reference ``Registerbijdrage <year>``, supply
    date 1 January), made by ``invoicing/create_invoice`` but keyed by year and holder
    (``fee-<year>-<holder>:invoice``) instead of by job: however often its job runs, or an
    instance for the same fee is started again (by hand after a cancel, or by a message routed
    twice), the professional gets one invoice, and every such instance waits for its number.

Who owes the fee: every professional whose Register entry is ``valid`` or
``recertification_running`` with ``valid_until`` on or after the reference date. Lapsed,
withdrawn and suspended entries are not invoiced (see ``in_register``).

Each professional gets one message ``register_fee_due`` with payload ``{business_key:
"fee-<year>-<holder>", holder, year}``; it starts one small ``register_fee`` instance per
professional (processes/register_fee). The message is keyed by year and holder, not by the
job, so a retried job, a second run in the same year or a new version of the schedule
invoices nobody twice. The register is read in batches (``yield_per``), so tens of thousands
of professionals never sit in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select

from certflow.registry import HandlerContext
from certflow.services.billing.batch import BatchResult, Order, create_invoices
from certflow.services.billing.invoices import CreateInvoiceInput, create_invoice, local_date
from certflow.store.register import RegisterEntry

MESSAGE = "register_fee_due"
# Statuses that are "in the register"; lapsed, suspended and withdrawn ones pay nothing.
IN_REGISTER = ("valid", "recertification_running")


class FanOutInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int | None = Field(default=None, ge=2000, le=2999)
    # When the run was due (the yearly timer's period, ISO): a late run invoices that year.
    due: datetime | None = None
    batch_size: int = Field(default=1000, ge=1, le=10_000)


class FeeInvoiceInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holder: str = Field(min_length=1, max_length=100)
    year: int = Field(ge=2000, le=2999)


def reference_year(now: datetime) -> int:
    """The fee year of a run at ``now`` (Dutch time): this year, or the coming one in December.

    The yearly timer fires on 1 January 00:00 (23:00 UTC on 31 December, hence Dutch time).
    SpiffWorkflow turns ``P1Y`` into a fixed 365 days, so after each leap year the run fires a
    day earlier: on 31 December 2028, 2032, ... That run is for the coming year, not for one
    already invoiced.
    """
    today = local_date(now)
    return today.year + 1 if today.month == 12 else today.year


def in_register(reference: date) -> Select[tuple[str]]:
    """Holders in the register on ``reference``, in a stable order."""
    return (select(RegisterEntry.holder)
            .where(RegisterEntry.status.in_(IN_REGISTER), RegisterEntry.valid_until >= reference)
            .order_by(RegisterEntry.holder))


def fee_key(year: int, holder: str) -> str:
    return f"fee-{year}-{holder}"


def fan_out(ctx: HandlerContext, data: FanOutInput) -> dict[str, Any]:
    """Invoice everyone in the register on 1 January and queue ``register_fee_due`` for each,
    a batch of holders at a time (certflow.services.billing.batch)."""
    year = data.year or reference_year(data.due or ctx.now)
    reference = date(year, 1, 1)
    count = queued = 0
    rows = ctx.session.execute(in_register(reference).execution_options(yield_per=data.batch_size))
    for batch in rows.scalars().partitions():
        count += len(batch)
        invoice_batch(ctx, year, batch)
        queued += ctx.emit_many(MESSAGE, [(fee_key(year, holder), {
            "business_key": fee_key(year, holder), "holder": holder, "year": year}) for holder in batch])
    return {"year": year, "reference_date": reference.isoformat(), "count": count, "queued": queued}


def invoice_batch(ctx: HandlerContext, year: int, holders: Sequence[str]) -> BatchResult:
    """The fee invoices of ``holders``, made together under the keys each holder's own
    ``register_fee/create_invoice`` uses, which then finds its invoice made. A holder whose
    account is incomplete is left to that task, which refuses with the reason (an incident)."""
    return create_invoices(ctx.session, ctx.now, ctx.settings, [
        Order(invoice_key(year, holder), fee_invoice_input(holder, year)) for holder in holders])


def invoice_key(year: int, holder: str) -> str:
    return f"{fee_key(year, holder)}:invoice"


def fee_invoice_input(holder: str, year: int) -> CreateInvoiceInput:
    return CreateInvoiceInput(customer=holder, product="register_fee",
                              reference=f"Registerbijdrage {year}", supply_date=date(year, 1, 1))


def create_fee_invoice(ctx: HandlerContext, data: FeeInvoiceInput) -> dict[str, Any]:
    """Invoice ``holder`` the register fee of ``year``: once per holder and year."""
    keyed = replace(ctx, idempotency_key=invoice_key(data.year, data.holder))
    return create_invoice(keyed, fee_invoice_input(data.holder, data.year))
