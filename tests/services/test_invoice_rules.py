"""Credit notes as the customer and the office notice them: in the customer's language, to the
same customer details as the invoice, and never two for one invoice, also when two office
workers credit it at the same moment (PostgreSQL); and the deploy-time check that names the
products an invoice may be for."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.services.billing import invoices as invoice_service
from certflow.services.billing.invoices import unknown_product
from certflow.settings import Settings
from certflow.store.billing import Invoice
from certflow.store.models import SharedTable
from handlers import HandlerError, PermanentError
from tests.handlers._fixtures_records import engine, session, settings  # noqa: F401  (fixtures)
from tests.handlers.test_invoicing import (  # noqa: F401  (fixtures)
    add_user, documents_only_where_tested, invoice, pg_engine, run,
)
from tests.support import ROOT, blocked_on_a_lock


NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


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
    assert blocked_on_a_lock(pg_engine, thread)  # waiting for the first to finish
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
    assert blocked_on_a_lock(pg_engine, thread)
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


# -- what the office is told before an invoice can be made --------------------------------------
def test_an_incomplete_account_is_refused_naming_everything_missing(session: Session,  # noqa: F811
                                                                   settings: Settings) -> None:  # noqa: F811
    user = add_user(session, address={"city": "Utrecht"})
    user.display_name, user.customer_type = " ", "organisation"
    session.flush()
    with pytest.raises(PermanentError) as refused:
        invoice(session, settings)
    assert str(refused.value) == (
        "invoicing: customer 'jan' has no display_name, address.street, address.postal_code, "
        "kvk_number or oin; complete the account before invoicing")


@pytest.mark.parametrize(("registration", "identifiers"), [
    ({"kvk_number": "12345678"}, {"kvk": "12345678"}),
    ({"oin": "00000001003214345000"}, {"oin": "00000001003214345000"}),
])
def test_an_organisation_is_invoiced_under_its_kvk_number_or_oin(
        session: Session, settings: Settings, registration: dict[str, str],  # noqa: F811
        identifiers: dict[str, str]) -> None:
    user = add_user(session)
    user.customer_type = "organisation"
    for column, value in registration.items():
        setattr(user, column, value)
    session.flush()
    assert stored(session, invoice(session, settings)["invoice_number"]).customer_identifiers == identifiers


@pytest.mark.parametrize(("language", "description"), [
    ("nl", "Certificering loopbaanprofessional"), ("en", "Certification as a career professional")])
def test_the_invoice_line_speaks_the_customers_language(session: Session, settings: Settings,  # noqa: F811
                                                        language: str, description: str) -> None:
    add_user(session, language=language)
    made = stored(session, invoice(session, settings)["invoice_number"])
    assert (made.language, made.description, made.lines[0].description) == (language, description, description)


def test_a_redelivered_job_gets_its_invoice_even_after_the_account_changed(  # noqa: F811
        session: Session, settings: Settings) -> None:  # noqa: F811
    """The worker ran the job, the result got lost, the office meanwhile emptied the address:
    the job's second delivery answers with the invoice already made, not with a refusal."""
    user = add_user(session)
    first = run(session, settings, "invoicing/create_invoice", {"customer": "jan", "product": "book"},
                key="inst-1:invoice:1")
    user.address = {}
    session.flush()
    assert run(session, settings, "invoicing/create_invoice", {"customer": "jan", "product": "book"},
               key="inst-1:invoice:1") == first


def test_a_credit_note_carries_the_invoices_reference(session: Session, settings: Settings) -> None:  # noqa: F811
    add_user(session)
    number = invoice(session, settings, reference="APP-2026-17")["invoice_number"]
    assert stored(session, credit(session, settings, number)["invoice_number"]).reference == "APP-2026-17"


def test_an_invoice_is_priced_from_the_deployed_fee_table(session: Session, settings: Settings) -> None:  # noqa: F811
    """A fee changed and deployed prices the next invoice (the file in processes/ is not read)."""
    shared = ROOT / "processes" / "shared"
    fees = (shared / "fees.dmn").read_text(encoding="utf-8")
    assert "<text>650.00</text>" in fees
    for name, content in (("fees.dmn", fees.replace("<text>650.00</text>", "<text>700.00</text>")),
                          ("vat.dmn", (shared / "vat.dmn").read_text(encoding="utf-8"))):
        session.add(SharedTable(name=name, version=1, content_hash=hashlib.sha256(content.encode()).hexdigest(),
                                content=content, deployed_at=NOW, deployed_by="olga"))
    add_user(session)
    made = invoice(session, settings)
    assert (made["net"], made["vat"], made["total"]) == ("700.00", "147.00", "847.00")


def test_a_lost_race_for_the_same_job_is_retried_not_failed(session: Session, settings: Settings,  # noqa: F811
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Two deliveries of one job inserting at once (PostgreSQL): the loser's insert hits the
    unique key. Simulated by hiding the first invoice from the second's check: the second
    fails with a retryable error (not an incident) naming the key; its retry then finds the
    first invoice by the key (test_same_key_returns_the_same_invoice)."""
    add_user(session)
    run(session, settings, "invoicing/create_invoice", {"customer": "jan", "product": "book"},
        key="inst-1:invoice:1")
    monkeypatch.setattr(invoice_service, "invoice_by_key", lambda *_: None)
    monkeypatch.setattr(invoice_service, "result_by_key", lambda *_: None)
    with pytest.raises(HandlerError) as lost:
        run(session, settings, "invoicing/create_invoice", {"customer": "jan", "product": "book"},
            key="inst-1:invoice:1")
    assert not isinstance(lost.value, PermanentError)
    assert str(lost.value) == "invoicing: concurrent insert for key 'inst-1:invoice:1'"


def test_a_fee_table_the_release_refuses_stops_the_invoice_naming_the_rule(  # noqa: F811
        session: Session, settings: Settings) -> None:  # noqa: F811
    """Deployed tables that this release cannot use (two VAT rows overlap): no invoice at a
    guessed price, but an incident that says which file and rule are wrong."""
    shared = ROOT / "processes" / "shared"
    vat = (shared / "vat.dmn").read_text(encoding="utf-8")
    overlap = vat.replace('low_2019_date"><text>[date("2019-01-01")', 'low_2019_date"><text>[date("2018-07-01")', 1)
    assert overlap != vat
    for name, content in (("fees.dmn", (shared / "fees.dmn").read_text(encoding="utf-8")), ("vat.dmn", overlap)):
        session.add(SharedTable(name=name, version=1, content_hash=hashlib.sha256(content.encode()).hexdigest(),
                                content=content, deployed_at=NOW, deployed_by="olga"))
    add_user(session)
    with pytest.raises(PermanentError) as refused:
        invoice(session, settings)
    message = str(refused.value)
    assert message.startswith("invoicing: ") and "vat.dmn" in message and "'low_2019'" in message
    assert "overlaps" in message
    assert session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_a_result_read_by_its_key_is_the_result_the_handler_gave(session: Session,  # noqa: F811
                                                                 settings: Settings) -> None:  # noqa: F811
    """A job run again (or an instance whose invoice the fee run's batch made) gets its result
    from the invoice's columns: the very result the first run returned, credit notes too."""
    add_user(session)
    made = run(session, settings, "invoicing/create_invoice", {"customer": "jan", "product": "book"}, key="i-1")
    noted = credit(session, settings, made["invoice_number"], key="c-1")
    assert invoice_service.result_by_key(session, "i-1") == made
    assert invoice_service.result_by_key(session, "c-1") == noted
    assert noted["credits_invoice_number"] == made["invoice_number"]
    assert invoice_service.result_by_key(session, "nothing") is None
    again = run(session, settings, "invoicing/create_invoice", {"customer": "jan", "product": "book"}, key="i-1")
    assert again == made
