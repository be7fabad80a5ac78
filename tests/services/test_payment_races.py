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
    """The second import waits for the first (on the invoices its payments pay) and then
    reports every entry as booked already, as a retry does; nothing is booked twice."""
    from certflow.engine.facade import Actor
    from certflow.services.payments import import_camt053
    from certflow.web.api.payments import import_statement

    office = Actor("olga", ("office",), True)
    xml = statement(entry("786.50", f"factuur {invoices[0]}", ref="R-1")
                    + entry("10.00", "geen idee", ref="R-2"))

    second = while_pending(lambda s: import_camt053(s, LATER, xml, "olga"),
                           lambda: import_statement(engine, office, xml))
    assert not isinstance(second, Exception), second
    assert second["counts"] == {"matched": 0, "partial": 0, "overpaid": 0, "unmatched": 0, "duplicates": 2}
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


def test_two_statements_paying_the_same_invoices_in_opposite_order_both_book(
        engine: Any, invoices: list[str]) -> None:
    """Two statements at once, each paying part of both invoices and sharing an unmatched
    entry, listed in opposite order: one waits for the other, and neither is a 500 (on
    PostgreSQL each held a lock the other wanted next: a deadlock, one import rolled back).
    The first import here books its entries one by one in the order an import takes its locks
    (the invoices by id, then the entries by their bank reference), so the second comes in
    while the first holds one invoice and still wants the other."""
    from decimal import Decimal

    from certflow.engine.facade import Actor
    from certflow.services.payments import register_payment
    from certflow.web.api.payments import import_statement

    office = Actor("olga", ("office",), True)
    first, second_invoice = invoices
    xml = statement(entry("100.00", f"factuur {second_invoice}", ref="B-2")
                    + entry("5.00", "geen idee", ref="SHARED")
                    + entry("100.00", f"factuur {first}", ref="B-1"))

    def book(s: Any, **kw: Any) -> None:
        register_payment(s, LATER, amount=Decimal("100.00"), source="camt", actor="olga", **kw)

    def first_import(s: Any) -> None:
        book(s, payment_reference=f"factuur {first}", external_id="A-1")

    def go_on(s: Any) -> None:  # still in the first import's transaction, the second waiting
        book(s, payment_reference=f"factuur {second_invoice}", external_id="A-2")
        register_payment(s, LATER, payment_reference="geen idee", amount=Decimal("5.00"), source="camt",
                         external_id="NL91ABNA0417164300:SHARED", actor="olga")  # the statement's id of it

    second = while_pending(first_import, lambda: import_statement(engine, office, xml), then=go_on)
    assert not isinstance(second, Exception), second
    assert second["counts"] == {"matched": 0, "partial": 2, "overpaid": 0, "unmatched": 0, "duplicates": 1}
    assert counts() == (5, ["open", "open"])


# -- the office's page: linking an unmatched payment, marking one handled -----------------------
def unmatched(amount: str = "786.50", external_id: str = "U-1") -> int:
    """A payment whose payer quoted nothing usable, committed: the office's to link."""
    from decimal import Decimal

    from certflow.services.payments import register_payment
    from certflow.store.db import session_scope

    with session_scope() as s:
        return register_payment(s, LATER, payment_reference="geen idee", amount=Decimal(amount),
                                source="camt", external_id=external_id, actor="olga").payment_id


def test_a_payment_linked_twice_at_once_pays_its_invoice_once(engine: Any, invoices: list[str]) -> None:
    """The office's double click on "Betaling koppelen": the second waits for the first (on the
    invoice), then finds the payment linked and is refused; the invoice is paid once and its
    process is told by the first alone."""
    from certflow.engine.facade import Actor
    from certflow.errors import Conflict
    from certflow.services.payments import link_payment
    from certflow.web.incoming_payments import link

    office = Actor("olga", ("office",), True)
    payment_id = unmatched()
    second = while_pending(lambda s: link_payment(s, LATER, payment_id, invoices[0], "olga"),
                           lambda: link(engine, office, payment_id, invoices[0]))
    assert isinstance(second, Conflict), second
    assert counts() == (1, ["paid", "open"])


def test_a_link_while_a_statement_pays_the_same_invoice_finds_it_paid(engine: Any, invoices: list[str]) -> None:
    """The statement that pays the invoice is being imported while the office links another
    payment to it: the link waits, then settles against the invoice as it is by then (paid),
    so the payment is overpaid, for a refund, and the invoice is not paid twice."""
    from certflow.engine.facade import Actor
    from certflow.services.payments import import_camt053
    from certflow.web.incoming_payments import link

    office = Actor("olga", ("office",), True)
    payment_id = unmatched()
    xml = statement(entry("786.50", f"factuur {invoices[0]}", ref="R-1"))
    second = while_pending(lambda s: import_camt053(s, LATER, xml, "olga"),
                           lambda: link(engine, office, payment_id, invoices[0]))
    assert not isinstance(second, Exception), second
    assert (second.outcome.status, second.outcome.invoice_paid, second.told) == ("overpaid", False, None)
    assert counts() == (2, ["paid", "open"])


def test_marking_handled_while_it_is_linked_is_refused(engine: Any, invoices: list[str]) -> None:
    """One clerk links the payment (it pays the invoice) while another marks it handled: the
    second waits for the first (on the payment) and is told it left the queue; no note on a
    settled payment."""
    from sqlalchemy import select

    from certflow.engine.facade import Actor
    from certflow.errors import Conflict
    from certflow.services.payment_queue import mark_handled
    from certflow.services.payments import link_payment
    from certflow.store.billing import Payment
    from certflow.store.db import session_scope

    payment_id = unmatched("756.25")  # all of invoices[1]

    def handle() -> Any:
        with session_scope() as s:
            return mark_handled(s, LATER, Actor("otto", ("office",), True), payment_id, "teruggestort")

    second = while_pending(lambda s: link_payment(s, LATER, payment_id, invoices[1], "olga"), handle)
    assert isinstance(second, Conflict), second
    with session_scope() as s:
        payment = s.get(Payment, payment_id)
        assert payment is not None and (payment.status, payment.handled_at) == ("matched", None)
