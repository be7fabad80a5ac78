"""email/send with ``attach_invoices`` over real SMTP (aiosmtpd): credit notes go with their mail,
a retried send attaches the same documents, and nobody is sent another person's invoice."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import handlers.email  # noqa: F401  (registers email/send)
import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.settings import Settings
from certflow.store.billing import Invoice
from certflow.store.communications import EmailMessage
from handlers import REGISTRY, HandlerError, PermanentError
from tests.handlers._fixtures_records import add_user, engine, make_ctx, session, settings  # noqa: F401
from tests.handlers.test_email import Collector, smtp, smtp_settings  # noqa: F401

CONTEXT = {"invoice_number": "2026-000001", "credit_note_number": "2026-000002"}


def run(session: Session, settings: Settings, operator: str, params: dict[str, Any],
        key: str | None = None) -> dict[str, Any]:
    return REGISTRY[operator](make_ctx(session, settings, key or uuid.uuid4().hex), params)


def invoice_and_credit_note(session: Session, settings: Settings) -> tuple[Invoice, Invoice]:
    first = run(session, settings, "invoicing/create_invoice",
                {"customer": "anna", "product": "english_certificate"})
    note = run(session, settings, "invoicing/credit_note",
               {"invoice_number": first["invoice_number"], "reason": "Niet betaald"})
    return (session.get_one(Invoice, first["invoice_id"]),
            session.get_one(Invoice, note["invoice_id"]))


def test_the_cancellation_mail_carries_the_credit_note(
        session: Session, smtp_settings: Settings, smtp: tuple[Collector, int]) -> None:
    add_user(session, "anna", "Anna Nowak-Öztürk")
    _, note = invoice_and_credit_note(session, smtp_settings)
    run(session, smtp_settings, "email/send", {
        "recipient": "anna", "template": "orders/cancelled", "context": CONTEXT,
        "attach_invoices": [note.number]})
    (message,) = smtp[0].messages()
    (part,) = list(message.iter_attachments())
    assert (part.get_filename(), part.get_content_type()) == ("2026-000002.pdf", "application/pdf")
    assert part.get_payload(decode=True) == note.pdf
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and "creditnota vindt u als PDF in de bijlage" in body.get_content()


def test_nobody_is_sent_another_persons_invoice(
        session: Session, smtp_settings: Settings, smtp: tuple[Collector, int]) -> None:
    add_user(session, "anna", "Anna Nowak")
    add_user(session, "piet", "Piet Bakker")
    invoice, _ = invoice_and_credit_note(session, smtp_settings)
    for numbers, error in (([invoice.number], "is not 'piet''s"),
                           (["2026-000404"], "no invoice '2026-000404'")):
        with pytest.raises(PermanentError, match=error):
            run(session, smtp_settings, "email/send", {
                "recipient": "piet", "template": "orders/cancelled", "context": CONTEXT,
                "attach_invoices": numbers})
    assert smtp[0].envelopes == []
    assert session.scalar(select(func.count()).select_from(EmailMessage)) == 0


def test_a_retried_send_attaches_the_same_documents(
        session: Session, settings: Settings, smtp_settings: Settings,
        smtp: tuple[Collector, int]) -> None:
    add_user(session, "anna", "Anna Nowak")
    invoice, _ = invoice_and_credit_note(session, settings)
    params = {"recipient": "anna", "template": "orders/invoice_sent",
              "context": {"invoice_number": invoice.number, "total": "26.62",
                          "payment_reference": invoice.payment_reference,
                          "product": "english_certificate", "quantity": 1},
              "attach_invoices": [invoice.number]}
    down = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": 9})
    with pytest.raises(HandlerError):
        run(session, down, "email/send", params, key="job-1")
    run(session, smtp_settings, "email/send", params, key="job-1")
    (message,) = smtp[0].messages()
    assert [p.get_payload(decode=True) for p in message.iter_attachments()] == [invoice.pdf]


def test_the_mail_on_the_wire_is_what_the_standard_library_would_have_sent(
        session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The message is built with header classes kept (certflow.services.email.POLICY) and written
    out once, each part in one go (``as_bytes``); a mail reader gets the same bytes as from a
    plain ``EmailMessage()`` through smtplib's ``send_message``: same parts, headers, line
    lengths and endings."""
    from email.policy import default as default_policy

    import io
    import random
    from datetime import datetime, timezone
    from email.generator import BytesGenerator

    from certflow.services import email as mail

    row = EmailMessage(id=7, idempotency_key="k", recipient="anna", to_address="anna@example.org",
                       subject="Factuur 2026-000001 — één", template="orders/invoice_sent",
                       language="nl", body_text="Beste Anna,\n\nZie de bijlage.\n" * 40,
                       body_html="<p>Beste Anna,</p>\n" * 40, status="queued",
                       created_at=datetime(2026, 3, 1, tzinfo=timezone.utc), attached_invoices=[])
    now = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    documents = [mail.Attachment("2026-000001.pdf", "application/pdf", bytes(range(256)) * 300),
                 mail.Attachment("2026-000001.xml", "application/xml", "<a>één</a>\n".encode() * 500),
                 mail.Attachment("empty.pdf", "application/pdf", b"")]

    random.seed(12)  # the same MIME boundaries both times
    sent = mail.as_bytes(mail._mime(row, "Łukasz Wójcik", settings, now, documents))
    random.seed(12)
    monkeypatch.setattr(mail, "POLICY", default_policy)
    expected = mail._mime(row, "Łukasz Wójcik", settings, now, documents)
    out = io.BytesIO()  # what smtplib.SMTP.send_message writes for an ASCII envelope
    BytesGenerator(out, policy=expected.policy).flatten(expected, linesep="\r\n")
    assert sent == out.getvalue()



def test_mails_built_one_after_another_are_each_what_the_standard_library_would_have_sent(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The headers a mail shares with others (sender, the parts' types and encodings) are
    parsed and written out once per process and kept (certflow.services.email.POLICY): each
    mail of a run, with its own recipient, subject, date and documents, is still byte for byte
    what a plain ``EmailMessage()`` would have been, the kept ones in front as well as after,
    and changing a header of one mail changes no other."""
    from email.generator import BytesGenerator
    from email.policy import default as default_policy

    import io
    import random
    from datetime import datetime, timedelta, timezone

    from certflow.services import email as mail

    CR = "\r"  # every other text with CRLF line ends

    def mails(seed: int) -> list[mail.MimeMessage]:
        random.seed(seed)  # the same MIME boundaries with either policy
        built = []
        for n, name in enumerate(["Anna de Vries", "Łukasz Wójcik", "Anna de Vries", "Zoë Ösztürk"] * 3):
            row = EmailMessage(id=f"m{n}", idempotency_key=f"k{n}", recipient=f"p{n}",
                               to_address=f"p{n % 5}@example.org", subject=f"Factuur 2026-{n % 4:06d} — één",
                               template="register_fee/invoice_sent", language="nl",
                               body_text=f"Beste {name},\n\nZie de bijlage.{CR * (n % 2)}\n" * (n + 1),
                               body_html=f"<p>Beste {name},</p>\n" * 30, status="sent",
                               created_at=datetime(2026, 3, 1, tzinfo=timezone.utc), attached_invoices=[])
            documents = [mail.Attachment(f"2026-{n % 3:06d}.pdf", "application/pdf", bytes([n]) * 3000)]
            if n % 2:
                documents.append(mail.Attachment(f"2026-{n % 3:06d}.xml", "application/xml", b"<a/>\n"))
            built.append(mail._mime(row, name, settings, datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
                                    + timedelta(minutes=n % 2), documents))
        return built

    def plain_bytes(message: mail.MimeMessage) -> bytes:
        out = io.BytesIO()
        BytesGenerator(out, policy=message.policy).flatten(message, linesep="\r\n")
        return out.getvalue()

    for _ in range(2):  # the second round: every shared header is kept from the first
        sent = [mail.as_bytes(message) for message in mails(7)]
        with monkeypatch.context() as plain:
            plain.setattr(mail, "POLICY", default_policy)
            assert sent == [plain_bytes(message) for message in mails(7)]

    first, second = mails(8)[:2]
    assert first.get_content_type() == "multipart/mixed" and first["From"] is second["From"]  # kept
    second.replace_header("From", "Iemand anders <ander@example.org>")
    second.get_body(("plain",)).set_param("charset", "us-ascii")  # a kept part header, changed
    assert first["From"] == settings.mail_from and second["From"] != first["From"]
    assert first.get_body(("plain",)).get_param("charset") == "utf-8"
    assert sent[0] == mail.as_bytes(mails(7)[0])

def test_a_text_holding_what_would_be_its_boundary_still_arrives_whole(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A boundary the text already holds is not used (a reader would cut the letter there):
    the first random boundary is put in the letter itself, and the mail still parses back to
    its text, HTML and attachment, each whole."""
    import email as email_lib
    import random
    from datetime import datetime, timezone
    from email.policy import default as default_policy

    from certflow.services import email as mail

    monkeypatch.setattr(random, "randrange", lambda _: 42)  # every boundary drawn: the same
    first = "=" * 15 + f"{42:0{len(repr(sys.maxsize - 1))}d}" + "=="
    text = f"Beste Anna,\n--{first}\nHier stopt de brief niet.\n"
    row = EmailMessage(id="m1", idempotency_key="k", recipient="anna", to_address="anna@example.org",
                       subject="Factuur", template="orders/invoice_sent", language="nl",
                       body_text=text, body_html=f"<p>--{first}--</p>\n", status="sent",
                       created_at=datetime(2026, 3, 1, tzinfo=timezone.utc), attached_invoices=[])
    pdf = mail.Attachment("2026-000001.pdf", "application/pdf", b"%PDF-1.7 " * 500)
    sent = mail.as_bytes(mail._mime(row, "Anna de Vries", settings,
                                    datetime(2026, 3, 1, 9, tzinfo=timezone.utc), [pdf]))

    parsed = email_lib.message_from_bytes(sent, policy=default_policy)
    assert parsed.get_boundary() != first
    body, attachment = [part for part in parsed.iter_parts()]
    plain, html = body.iter_parts()
    # (the wire's CRLF line ends, as a mail reader reads them)
    assert plain.get_content().replace("\r\n", "\n") == text
    assert html.get_content().replace("\r\n", "\n") == f"<p>--{first}--</p>\n"
    assert attachment.get_content() == pdf.content
