"""The invoice mail carries the invoice: the real certification process mails it over real SMTP
(aiosmtpd), and what arrives is byte for byte the document the API serves."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage as MimeMessage

import pytest

from certflow.store.db import session_scope
from certflow.store.models import User
from tests.handlers.test_email import Collector, free_port
from tests.web.test_api import Api, serving
from tests.web.test_records_api import invoiced

from aiosmtpd.controller import Controller


@pytest.fixture
def mailed(sqlite_url: str) -> Iterator[tuple[Api, Collector]]:
    """The app with the certification process deployed and mail going to a local SMTP server."""
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with serving() as api:
            api.engine.settings = api.engine.settings.model_copy(
                update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": False})
            api.deploy()
            yield api, collector
    finally:
        controller.stop()


def attachments(message: MimeMessage) -> dict[str, tuple[str, bytes]]:
    return {part.get_filename() or "": (part.get_content_type(), part.get_payload(decode=True))
            for part in message.iter_attachments()}


def invoice_mail(collector: Collector, number: str) -> MimeMessage:
    found = [m for m in collector.messages() if number in str(m["Subject"])]
    assert len(found) == 1, [str(m["Subject"]) for m in collector.messages()]
    return found[0]


def test_a_person_receives_the_invoice_pdf_the_api_serves(
        mailed: tuple[Api, Collector]) -> None:
    api, collector = mailed
    _, invoice = invoiced(api)
    number = invoice["number"]
    message = invoice_mail(collector, number)
    assert message["To"].addresses[0].username == "cas"
    served = api.get(f"/api/invoices/{number}/pdf", "cas")
    assert served.status_code == 200
    assert attachments(message) == {f"{number}.pdf": ("application/pdf", served.content)}
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and "bijlage" in text.get_content()


def test_an_organisation_also_receives_the_ubl_the_api_serves(
        mailed: tuple[Api, Collector]) -> None:
    api, collector = mailed
    with session_scope() as session:
        cas = session.get(User, "cas")
        assert cas is not None
        cas.customer_type, cas.kvk_number = "organisation", "69599068"
    _, invoice = invoiced(api)
    number = invoice["number"]
    found = attachments(invoice_mail(collector, number))
    pdf, ubl = (api.get(f"/api/invoices/{number}/{kind}", "cas") for kind in ("pdf", "ubl"))
    assert found == {f"{number}.pdf": ("application/pdf", pdf.content),
                     f"{number}.xml": ("application/xml", ubl.content)}
    assert b"urn:fdc:peppol.eu:2017:poacc:billing:3.0" in ubl.content
