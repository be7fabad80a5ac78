"""Operators ``register_fee/fan_out`` and ``register_fee/create_invoice``: adapters over
``certflow.services.register_fee`` (who owes the yearly fee, one message per professional,
one invoice per professional and year; inputs and results are documented there).

The fan-out's messages go through ``ctx.emit``, the outbox the engine puts in the context.
"""

from __future__ import annotations

from typing import Any

from certflow.i18n import N_
from certflow.services import register_fee
from certflow.services.register_fee import FanOutInput, FeeInvoiceInput
from handlers import HandlerContext, handler


@handler("register_fee/fan_out",
         summary=N_("Start the yearly register fee for everyone in the register on 1 January."))
def fan_out(ctx: HandlerContext, data: FanOutInput) -> dict[str, Any]:
    """Queue ``register_fee_due`` for every professional in the register on 1 January."""
    return register_fee.fan_out(ctx, data)


@handler("register_fee/create_invoice", effects="database",
         summary=N_("Invoice the professional the year's register fee, once per year."))
def create_fee_invoice(ctx: HandlerContext, data: FeeInvoiceInput) -> dict[str, Any]:
    """Invoice ``holder`` the register fee of ``year``: once per holder and year."""
    return register_fee.create_fee_invoice(ctx, data)
