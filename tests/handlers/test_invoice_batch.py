"""The yearly fee run's bulk invoices (certflow.services.billing.batch) and what follows them:
numbers stay gapless and unique, a batch run twice invoices and mails nobody twice, the
instance's own invoice task finds the invoice made, and its PDF is made once, for the mail."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import pypdf
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import handlers.email  # noqa: F401  (registers email/send)
import handlers.register_fee  # noqa: F401  (registers register_fee/create_invoice)
from certflow.services.billing.batch import Order, create_invoices
from certflow.services.billing.views import invoice_document
from certflow.services.register_fee import fee_invoice_input, invoice_key
from certflow.settings import Settings
from certflow.store.billing import Invoice, InvoiceSequence
from certflow.store.communications import EmailMessage
from handlers import REGISTRY
from tests.handlers._fixtures_records import NOW, add_user, engine, make_ctx, session, settings  # noqa: F401
from tests.handlers.test_email import Collector, smtp, smtp_settings  # noqa: F401

YEAR = 2026


@dataclass(frozen=True)
class Viewer:
    username: str
    is_staff: bool = False


def orders(*holders: str) -> list[Order]:
    return [Order(invoice_key(YEAR, h), fee_invoice_input(h, YEAR)) for h in holders]


def numbers(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Invoice.customer_username, Invoice.number)).tuples().all())


def last_seq(session: Session) -> int:
    return session.scalars(select(InvoiceSequence.last_seq).where(InvoiceSequence.year == YEAR)).one()


def test_a_batch_numbers_on_from_the_last_invoice_without_gaps(session: Session, settings: Settings) -> None:
    for name in ("anna", "bram", "cees"):
        add_user(session, name, name.title())
    REGISTRY["register_fee/create_invoice"](make_ctx(session, settings, "job-1"), {"holder": "anna", "year": YEAR})
    made = create_invoices(session, NOW, settings, orders("bram", "cees"))
    assert sorted(made.created.values()) == ["2026-000002", "2026-000003"]
    assert numbers(session) == {"anna": "2026-000001", "bram": "2026-000002", "cees": "2026-000003"}
    assert last_seq(session) == 3
    for invoice in session.scalars(select(Invoice).where(Invoice.customer_username == "cees")):
        assert (invoice.reference, invoice.supply_date) == (f"Registerbijdrage {YEAR}", date(YEAR, 1, 1))
        assert (str(invoice.net_total), str(invoice.gross_total)) == ("133.00", "160.93")
        assert [line.product for line in invoice.lines] == ["register_fee"]
        assert invoice.pdf is None  # made where it is first needed


def test_the_same_batch_twice_invoices_nobody_twice(session: Session, settings: Settings) -> None:
    for name in ("anna", "bram"):
        add_user(session, name, name.title())
    first = create_invoices(session, NOW, settings, orders("anna", "bram", "anna"))
    again = create_invoices(session, NOW, settings, orders("anna", "bram"))
    assert len(first.created) == 2 and again.created == {} and again.existing == 2
    assert session.scalar(select(func.count()).select_from(Invoice)) == 2
    assert last_seq(session) == 2  # the retry took no number


def test_an_incomplete_account_is_left_to_its_own_task_and_takes_no_number(
        session: Session, settings: Settings) -> None:
    add_user(session, "anna", "Anna")
    add_user(session, "bram", "Bram").address = {"city": "Utrecht"}
    made = create_invoices(session, NOW, settings, orders("bram", "anna", "nobody"))
    assert list(made.created.values()) == ["2026-000001"]
    assert "address.street" in made.refused[invoice_key(YEAR, "bram")]
    assert invoice_key(YEAR, "nobody") in made.refused
    assert last_seq(session) == 1


def test_the_instance_finds_the_invoice_the_batch_made(session: Session, settings: Settings) -> None:
    add_user(session, "anna", "Anna")
    made = create_invoices(session, NOW, settings, orders("anna"))
    result = REGISTRY["register_fee/create_invoice"](make_ctx(session, settings, "instance:task:1"),
                                                     {"holder": "anna", "year": YEAR})
    assert result["invoice_number"] == made.created[invoice_key(YEAR, "anna")]
    assert (result["total"], result["due_date"]) == ("160.93", "2026-04-01")
    assert session.scalar(select(func.count()).select_from(Invoice)) == 1


def mail(session: Session, settings: Settings, number: str, key: str) -> dict[str, Any]:
    return REGISTRY["email/send"](make_ctx(session, settings, key), {
        "recipient": "anna", "template": "register_fee/invoice_sent",
        "context": {"year": YEAR, "invoice_number": number, "total": "160.93",
                    "payment_reference": "0", "due_date": "2026-04-01"},
        "attach_invoices": [number]})


def test_the_invoice_mail_attaches_the_pdf_made_once_and_a_retry_sends_nothing(
        session: Session, smtp_settings: Settings, smtp: tuple[Collector, int]) -> None:
    add_user(session, "anna", "Anna de Vries")
    number = create_invoices(session, NOW, smtp_settings, orders("anna")).created[invoice_key(YEAR, "anna")]
    key = f"mail-{uuid.uuid4().hex}"
    mail(session, smtp_settings, number, key)
    mail(session, smtp_settings, number, key)  # the job delivered twice
    (message,) = smtp[0].messages()
    (part,) = list(message.iter_attachments())
    invoice = session.scalars(select(Invoice).where(Invoice.number == number)).one()
    session.expire(invoice)
    assert invoice.pdf is not None and part.get_payload(decode=True) == invoice.pdf
    assert number in pypdf.PdfReader(io.BytesIO(invoice.pdf)).pages[0].extract_text()
    assert session.scalar(select(func.count()).select_from(EmailMessage)) == 1


def test_a_download_before_the_mail_gets_the_same_pdf(session: Session, settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    number = create_invoices(session, NOW, settings, orders("anna")).created[invoice_key(YEAR, "anna")]
    anna = Viewer("anna")
    first = invoice_document(session, anna, number, "pdf", settings).content
    again = invoice_document(session, anna, number, "pdf", settings).content
    assert first == again and first.startswith(b"%PDF")
    assert b"<cbc:ID>" + number.encode() in invoice_document(session, anna, number, "ubl", settings).content
