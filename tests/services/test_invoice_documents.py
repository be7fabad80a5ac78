"""An invoice's PDF and UBL as its customer gets them. Invoices made in bulk (the yearly fee
run, certflow.services.billing.batch) are stored without documents; each one's are rendered
once, where first needed (the invoice e-mail, a download), and stored: the PDF in the mail is
the PDF downloaded later, it is that invoice's own, and it is not rendered again."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pypdf
import pytest
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

import handlers.email  # noqa: F401  (registers email/send)
import handlers.invoicing  # noqa: F401  (registers invoicing/create_invoice)
from certflow.services.billing import invoices as invoice_service
from certflow.services.billing.batch import Order, create_invoices
from certflow.services.billing.views import invoice_document
from certflow.services.register_fee import fee_invoice_input, invoice_key
from certflow.settings import Settings
from certflow.store.billing import Invoice
from handlers import REGISTRY
from tests.handlers._fixtures_records import NOW, add_user, engine, make_ctx, session, settings  # noqa: F401
from tests.handlers.test_email import Collector, smtp, smtp_settings  # noqa: F401

pytestmark = pytest.mark.documents

YEAR = 2026
UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}


@dataclass(frozen=True)
class Viewer:
    username: str
    is_staff: bool = False


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """How often each invoice's PDF and UBL were rendered, by file name (``<number>.pdf``)."""
    counted: Counter[str] = Counter()
    pdf, ubl = invoice_service.render_pdf, invoice_service.build_ubl

    def render_pdf(invoice: Invoice, config: Settings) -> bytes:
        counted[f"{invoice.number}.pdf"] += 1
        return pdf(invoice, config)

    def build_ubl(invoice: Invoice, config: Settings) -> str:
        counted[f"{invoice.number}.xml"] += 1
        return ubl(invoice, config)

    monkeypatch.setattr(invoice_service, "render_pdf", render_pdf)
    monkeypatch.setattr(invoice_service, "build_ubl", build_ubl)
    yield counted


def bulk(session: Session, settings: Settings, *holders: str) -> list[str]:  # noqa: F811
    """The fee run's invoices for ``holders``: their numbers, in order."""
    made = create_invoices(session, NOW, settings,
                           [Order(invoice_key(YEAR, h), fee_invoice_input(h, YEAR)) for h in holders])
    return [made.created[invoice_key(YEAR, h)] for h in holders]


def download(session: Session, settings: Settings, who: str, number: str, kind: Any) -> bytes:  # noqa: F811
    return invoice_document(session, Viewer(who), number, kind, settings).content


def pdf_text(pdf: bytes) -> str:
    return pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def stored(session: Session, number: str) -> Invoice:  # noqa: F811
    """The invoice as the database has it now (not as this session last saw it)."""
    session.expire_all()
    return session.scalars(select(Invoice).where(Invoice.number == number)).one()


def test_the_mailed_pdf_and_ubl_are_the_downloaded_ones_with_the_invoices_number_and_amount(
        session: Session, smtp_settings: Settings, smtp: tuple[Collector, int],  # noqa: F811
        renders: Counter[str]) -> None:
    acme = add_user(session, "acme", "Acme Loopbaanadvies B.V.")
    acme.customer_type, acme.kvk_number = "organisation", "12345678"
    (number,) = bulk(session, smtp_settings, "acme")
    REGISTRY["email/send"](make_ctx(session, smtp_settings, "mail-1"), {
        "recipient": "acme", "template": "register_fee/invoice_sent",
        "context": {"year": YEAR, "invoice_number": number, "total": "160.93",
                    "payment_reference": "0", "due_date": "2026-04-01"},
        "attach_invoices": [number]})
    session.commit()
    (message,) = smtp[0].messages()
    mailed = {part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()}
    downloaded = {f"{number}.pdf": download(session, smtp_settings, "acme", number, "pdf"),
                  f"{number}.xml": download(session, smtp_settings, "acme", number, "ubl")}
    assert mailed == downloaded
    text = pdf_text(mailed[f"{number}.pdf"])
    assert number in text and "160,93" in text and "Acme Loopbaanadvies B.V." in text
    ubl = etree.fromstring(mailed[f"{number}.xml"])
    assert ubl.findtext("cbc:ID", namespaces=UBL) == number
    assert ubl.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=UBL) == "160.93"
    assert renders == Counter({f"{number}.pdf": 1, f"{number}.xml": 1})  # for the mail, once


def test_each_invoice_of_a_batch_gets_its_own_documents(session: Session, settings: Settings,  # noqa: F811
                                                        renders: Counter[str]) -> None:
    add_user(session, "anna", "Anna de Vries")
    add_user(session, "bram", "Bram Jansen")
    anna, bram = bulk(session, settings, "anna", "bram")
    assert anna in pdf_text(download(session, settings, "anna", anna, "pdf"))
    session.commit()
    assert (stored(session, bram).pdf, stored(session, bram).ubl_xml) == (None, None)  # not needed yet
    text = pdf_text(download(session, settings, "bram", bram, "pdf"))
    assert bram in text and "Bram Jansen" in text and anna not in text and "Anna" not in text
    assert etree.fromstring(download(session, settings, "bram", bram, "ubl")).findtext(
        "cbc:ID", namespaces=UBL) == bram
    assert renders == Counter({f"{n}.{kind}": 1 for n in (anna, bram) for kind in ("pdf", "xml")})


def test_documents_once_rendered_are_stored_and_not_rendered_again(session: Session,  # noqa: F811
                                                                   settings: Settings,  # noqa: F811
                                                                   renders: Counter[str]) -> None:
    add_user(session, "anna", "Anna de Vries")
    (number,) = bulk(session, settings, "anna")
    first = {kind: download(session, settings, "anna", number, kind) for kind in ("pdf", "ubl")}
    session.commit()
    invoice = stored(session, number)
    assert (invoice.pdf, (invoice.ubl_xml or "").encode()) == (first["pdf"], first["ubl"])
    later = {kind: download(session, settings, "anna", number, kind) for kind in ("pdf", "ubl")}
    assert later == first
    assert renders == Counter({f"{number}.pdf": 1, f"{number}.xml": 1})
    # An invoice made on its own is rendered as it is made, and a download renders nothing.
    single = REGISTRY["invoicing/create_invoice"](make_ctx(session, settings, "inst-1:invoice:1"),
                                                  {"customer": "anna", "product": "book"})["invoice_number"]
    renders.clear()
    assert single in pdf_text(download(session, settings, "anna", single, "pdf"))
    assert download(session, settings, "anna", single, "ubl").startswith(b"<?xml")
    assert renders == Counter()


def test_a_second_renderer_racing_the_first_does_not_replace_the_stored_documents(
        session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Two workers render the same bulk invoice's documents at once (each saw none stored):
    the first write stands, so the PDF a customer was mailed is the one downloaded later."""
    from sqlalchemy.orm.attributes import set_committed_value

    add_user(session, "anna", "Anna de Vries")
    (number,) = bulk(session, settings, "anna")
    mailed = download(session, settings, "anna", number, "pdf")
    session.commit()
    racer = stored(session, number)
    set_committed_value(racer, "pdf", None)  # as the second worker read it, before the first wrote
    set_committed_value(racer, "ubl_xml", None)
    monkeypatch.setattr(invoice_service, "render_pdf", lambda *_: b"%PDF- another rendering")
    invoice_service.ensure_documents(session, racer, settings)
    session.commit()
    assert stored(session, number).pdf == mailed
