"""Credit notes as the customer and the office notice them: in the customer's language, to the
same customer details as the invoice, and never two for one invoice, also when two office
workers credit it at the same moment (PostgreSQL); and the deploy-time check that names the
products an invoice may be for."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.services.billing.invoices import unknown_product
from certflow.settings import Settings
from certflow.store.billing import Invoice
from handlers import PermanentError
from tests.handlers._fixtures_records import engine, session, settings  # noqa: F401  (fixtures)
from tests.handlers.test_invoicing import add_user, invoice, pg_engine, run  # noqa: F401
from tests.support import ROOT


def credit(session: Session, settings: Settings, number: str, key: str = "c-1") -> dict[str, Any]:  # noqa: F811
    return run(session, settings, "invoicing/credit_note", {"invoice_number": number, "reason": "dubbel"},
               key=key)


def stored(session: Session, number: str) -> Invoice:  # noqa: F811
    return session.scalars(select(Invoice).where(Invoice.number == number)).one()


@pytest.mark.parametrize(("language", "description"), [
    ("nl", "Creditnota voor factuur 2026-000001"), ("en", "Credit note for invoice 2026-000001")])
def test_a_credit_note_speaks_the_customers_language(session: Session, settings: Settings,  # noqa: F811
                                                     language: str, description: str) -> None:
    add_user(session, language=language)
    original = invoice(session, settings)
    note = stored(session, credit(session, settings, original["invoice_number"])["invoice_number"])
    assert (note.language, note.description, note.note) == (language, description, "dubbel")


def test_a_credit_note_goes_to_the_same_customer_as_the_invoice(session: Session,  # noqa: F811
                                                                settings: Settings) -> None:  # noqa: F811
    user = add_user(session)
    user.customer_type, user.kvk_number, user.vat_id = "organisation", "12345678", "NL001234567B01"
    session.flush()
    original = stored(session, invoice(session, settings)["invoice_number"])
    note = stored(session, credit(session, settings, original.number)["invoice_number"])
    assert original.customer_identifiers == {"kvk": "12345678", "vat_id": "NL001234567B01"}
    for column in ("customer_username", "customer_name", "customer_address", "customer_email",
                   "customer_type", "customer_identifiers", "reference", "currency", "supply_date"):
        assert getattr(note, column) == getattr(original, column), column
    assert (note.customer_email, note.customer_type) == ("jan@example.nl", "organisation")


@pytest.mark.integration
def test_two_workers_crediting_one_invoice_at_once_make_one_credit_note(
        pg_engine: Any, settings: Settings) -> None:  # noqa: F811
    """The second waits on the invoice's row lock and then sees it credited: no second credit
    note (which would refund the customer twice)."""
    with Session(pg_engine) as setup:
        add_user(setup)
        number = invoice(setup, settings)["invoice_number"]
        setup.commit()
    first = Session(pg_engine)
    credit(first, settings, number, key="first")
    outcome: list[object] = []

    def second() -> None:
        with Session(pg_engine) as s:
            try:
                outcome.append(credit(s, settings, number, key="second"))
                s.commit()
            except PermanentError as exc:
                outcome.append(str(exc))

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive()  # waiting for the first to finish
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert outcome == [f"invoicing: invoice {number} is already credited"]
    with Session(pg_engine) as s:
        notes = s.scalar(select(func.count()).select_from(Invoice).where(Invoice.kind == "credit_note"))
    assert notes == 1


def test_deploy_names_the_products_that_have_a_fee() -> None:
    processes = ROOT / "processes"
    assert unknown_product(processes, "certification") is None
    said = unknown_product(processes, "certificaat")
    assert said is not None and said.startswith(
        "product 'certificaat' has no fee in processes/shared/fees.dmn (known: ")
    known = said.split("(known: ")[1].rstrip(")").split(", ")
    assert "certification" in known and known == sorted(known) and len(known) > 3


def test_a_cancelled_invoice_is_not_credited(session: Session, settings: Settings) -> None:  # noqa: F811
    add_user(session)
    number = invoice(session, settings)["invoice_number"]
    stored(session, number).status = "cancelled"
    with pytest.raises(PermanentError) as refused:
        credit(session, settings, number)
    assert str(refused.value) == f"invoicing: invoice {number} is already cancelled"
    assert session.scalar(select(func.count()).select_from(Invoice).where(Invoice.kind == "credit_note")) == 0


@pytest.mark.integration
def test_a_redelivered_credit_job_waiting_on_the_lock_gets_the_first_credit_note(
        pg_engine: Any, settings: Settings) -> None:  # noqa: F811
    """The same job twice (a redelivery while the first run still holds the lock): the second
    gets the first run's credit note, not a refusal and not a second note."""
    with Session(pg_engine) as setup:
        add_user(setup)
        number = invoice(setup, settings)["invoice_number"]
        setup.commit()
    first = Session(pg_engine)
    made = credit(first, settings, number, key="same")
    outcome: list[object] = []

    def again() -> None:
        with Session(pg_engine) as s:
            try:
                outcome.append(credit(s, settings, number, key="same"))
                s.commit()
            except PermanentError as exc:
                outcome.append(str(exc))

    thread = threading.Thread(target=again)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive()
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert outcome == [made]


@pytest.mark.parametrize(("paid", "note_status"), [(False, "paid"), (True, "open")])
def test_a_credit_note_mirrors_every_line_and_is_owed_only_when_the_invoice_was_paid(
        session: Session, settings: Settings, paid: bool, note_status: str) -> None:  # noqa: F811
    add_user(session)
    original = stored(session, invoice(session, settings, product="book", quantity=3)["invoice_number"])
    if paid:
        original.status = "paid"
    note = stored(session, credit(session, settings, original.number)["invoice_number"])
    assert note.status == note_status  # a refund is owed (open) only for money received
    assert note.due_date == note.issue_date and note.kind == "credit_note"
    columns = ("position", "product", "description", "quantity", "vat_inclusive", "vat_rate", "vat_category")
    assert [tuple(getattr(line, c) for c in columns) for line in note.lines] == \
        [tuple(getattr(line, c) for c in columns) for line in original.lines]
    assert [(line.unit_price, line.unit_net, line.line_net) for line in note.lines] == \
        [(-line.unit_price, -line.unit_net, -line.line_net) for line in original.lines]
    assert note.lines[0].quantity == 3 and note.lines[0].line_net < 0
