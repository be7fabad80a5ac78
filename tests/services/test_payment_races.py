"""One bank statement imported twice at the same moment, on PostgreSQL (certflow.services.
payments): the office's double click on the upload, or the bank's file fetched by two runs.
Money is booked once and an invoice is paid once, whichever request gets there second."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.races import while_pending
from tests.services.test_camt_rules import LATER, NOW, entry, statement

pytestmark = pytest.mark.integration


@pytest.fixture
def invoices(pg_url: str) -> list[str]:
    import handlers.invoicing  # noqa: F401  (registers the operators)
    from certflow.bootstrap import create_schema
    from certflow.settings import get_settings
    from certflow.store.db import session_scope
    from certflow.store.models import User
    from handlers import REGISTRY, HandlerContext

    create_schema(pg_url)
    out = []
    with session_scope() as s:
        s.add(User(username="jan", display_name="Jan de Vries", email="jan@example.nl",
                   address={"street": "Oudegracht 1", "postal_code": "3511 AA",
                            "city": "Utrecht", "country": "NL"}, groups=[], created_at=NOW))
        s.flush()
        for product in ("certification", "recertification"):
            ctx = HandlerContext(session=s, now=NOW, idempotency_key=uuid.uuid4().hex,
                                 settings=get_settings())
            out.append(REGISTRY["invoicing/create_invoice"](
                ctx, {"customer": "jan", "product": product})["invoice_number"])
    return out


@pytest.fixture
def engine(invoices: list[str]) -> Any:
    from certflow.bootstrap import build_engine

    engine = build_engine()
    engine.publisher = lambda jobs: None
    return engine


def counts() -> tuple[int, list[str]]:
    """How many payments are booked, and each invoice's status."""
    from sqlalchemy import func, select

    from certflow.store.billing import Invoice, Payment
    from certflow.store.db import session_scope

    with session_scope() as s:
        return (s.scalar(select(func.count()).select_from(Payment)) or 0,
                list(s.scalars(select(Invoice.status).order_by(Invoice.number))))


def test_one_statement_imported_twice_at_once_books_each_payment_once(engine: Any, invoices: list[str]) -> None:
    """The second import waits for the first (on the invoice a payment pays, or on the
    payment's key) and is refused whole with a clear conflict; a retry reports duplicates."""
    from certflow.engine.facade import Actor
    from certflow.errors import Conflict
    from certflow.services.payments import import_camt053
    from certflow.web.api.payments import import_statement

    office = Actor("olga", ("office",), True)
    xml = statement(entry("786.50", f"factuur {invoices[0]}", ref="R-1")
                    + entry("10.00", "geen idee", ref="R-2"))

    second = while_pending(lambda s: import_camt053(s, LATER, xml, "olga"),
                           lambda: import_statement(engine, office, xml))
    assert isinstance(second, Conflict), second
    assert counts() == (2, ["paid", "open"])
    again = import_statement(engine, office, xml)
    assert again["counts"] == {"matched": 0, "partial": 0, "overpaid": 0, "unmatched": 0, "duplicates": 2}
    assert counts() == (2, ["paid", "open"])


def test_two_payments_of_one_invoice_at_once_pay_it_once(engine: Any, invoices: list[str]) -> None:
    """A payment registered by hand while the statement with the bank's own booking of it is
    imported: the invoice is locked by the first; the second finds it paid (overpaid, for the
    office), and nothing is delivered to the process twice."""
    from decimal import Decimal

    from certflow.engine.facade import Actor
    from certflow.services.payments import register_payment
    from certflow.web.api.payments import import_statement

    office = Actor("olga", ("office",), True)
    xml = statement(entry("786.50", f"factuur {invoices[0]}", ref="R-1"))
    second = while_pending(
        lambda s: register_payment(s, LATER, invoice_number=invoices[0], amount=Decimal("786.50"),
                                   source="api", external_id="hand-1", actor="olga"),
        lambda: import_statement(engine, office, xml))
    assert not isinstance(second, Exception), second
    assert second["counts"]["overpaid"] == 1 and second["deliveries"] == []
    assert counts() == (2, ["paid", "open"])
