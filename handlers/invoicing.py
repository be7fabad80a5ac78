"""Operators ``invoicing/create_invoice`` and ``invoicing/credit_note``: adapters over
``certflow.services.billing.invoices`` (inputs, results and idempotency are documented there).

Deploy checks here: a product a diagram names as a literal has a fee in the shared fee table,
and the shared fee and VAT tables themselves are valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from certflow.i18n import Message, N_
from certflow.services.billing import fees, invoices
from certflow.services.billing.invoices import CreateInvoiceInput, CreditNoteInput
from handlers import HandlerContext, deploy_check, handler, shared_check


@handler("invoicing/create_invoice", effects="database",
         summary=N_("Invoice a customer for a product, at the fee of the supply date."))
def create_invoice(ctx: HandlerContext, data: CreateInvoiceInput) -> dict[str, Any]:
    """Invoice ``customer`` for ``quantity`` x ``product`` at the fee of the supply date."""
    return invoices.create_invoice(ctx, data)


@handler("invoicing/credit_note", effects="database",
         summary=N_("Cancel an invoice in full with a credit note."))
def credit_note(ctx: HandlerContext, data: CreditNoteInput) -> dict[str, Any]:
    """Reverse an invoice in full with a credit note; the original becomes ``credited``."""
    return invoices.credit_note(ctx, data)


@deploy_check("invoicing/create_invoice")
def _product_has_a_fee(literals: dict[str, Any]) -> list[str]:
    from certflow.settings import get_settings

    product = literals.get("product")
    if isinstance(product, str):
        problem = invoices.unknown_product(get_settings().processes_dir, product)
        if problem:
            return [Message("invoicing/create_invoice: %(problem)s", problem=problem)]
    return []


@shared_check("shared")
def _fee_tables_valid(processes_dir: Path) -> list[str]:
    return fees.validate_tables(processes_dir)
