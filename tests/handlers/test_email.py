"""email/send against a real SMTP server (aiosmtpd) and a real maildir; templates checked."""

# Fixtures are imported by name from _fixtures_records, so pytest finds them in this module;
# ruff reads their use as parameters as a redefinition (F811).
# ruff: noqa: F811

from __future__ import annotations

import email
import mailbox
import socket
from collections.abc import Iterator
from email.message import EmailMessage as MimeMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import handlers.email  # noqa: F401  (registers email/send)
from tests.handlers._fixtures_records import NOW, add_user, engine, make_ctx, session, settings  # noqa: F401
from certflow.services import privacy
from certflow.settings import Settings
from certflow.store.communications import EmailMessage
from handlers import REGISTRY, HandlerError, PermanentError
from certflow.services.email import check_templates, long_date, money, render, send_newsletter

SEND = REGISTRY["email/send"]


class Collector:
    """An aiosmtpd handler that keeps every envelope it is given."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[MimeMessage]:
        return [email.message_from_bytes(e.content, policy=default_policy)
                for e in self.envelopes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Collector, int]]:
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(settings: Settings, smtp: tuple[Collector, int]) -> Settings:
    return settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp[1]})


def parts(msg: MimeMessage) -> tuple[str, str]:
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_sends_dutch_mail_over_smtp_with_escaped_html(session: Session, smtp_settings: Settings,
                                                      smtp: tuple[Collector, int]) -> None:
    add_user(session, "anna", "Anna de Vriës", "anna@example.org", language="nl")
    result = SEND(make_ctx(session, smtp_settings, "job-1"), {
        "recipient": "anna", "template": "certification/application_rejected",
        "context": {"reason": "<script>alert('x')</script> geen hbo-diploma"},
    })

    assert result["status"] == "sent" and result["language"] == "nl"
    # The case keeps the result: it names the person, not their address.
    assert result["recipient"] == "anna" and "anna@example.org" not in str(result)
    (envelope,) = smtp[0].envelopes
    assert envelope.rcpt_tos == ["anna@example.org"]
    (msg,) = smtp[0].messages()
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Uw aanvraag voor certificering"
    assert msg["To"] == "Anna de Vriës <anna@example.org>"
    text, html = parts(msg)
    assert "Beste Anna de Vriës," in text and "geen hbo-diploma" in text
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_english_recipient_gets_english_text(session: Session, smtp_settings: Settings,
                                             smtp: tuple[Collector, int]) -> None:
    add_user(session, "john", "John Smith", "john@example.org", language="en")
    SEND(make_ctx(session, smtp_settings, "job-2"), {
        "recipient": "john", "template": "certification/granted",
        "context": {"register_number": "RL-2026-00007", "valid_until": "2029-03-02"},
    })

    (msg,) = smtp[0].messages()
    assert msg["Subject"] == "Congratulations, you are a certified career professional!"
    text, html = parts(msg)
    assert "Dear John Smith," in text and "RL-2026-00007" in text
    assert "2 March 2029" in text and "2 March 2029" in html


def test_same_key_sends_once(session: Session, smtp_settings: Settings,
                             smtp: tuple[Collector, int]) -> None:
    add_user(session, "anna", "Anna de Vries")
    params = {"recipient": "anna", "template": "certification/mentor_assigned",
              "context": {"mentor_name": "Jan Jansen"}}
    first = SEND(make_ctx(session, smtp_settings, "job-3"), params)
    again = SEND(make_ctx(session, smtp_settings, "job-3"), params)

    assert again == first
    assert len(smtp[0].envelopes) == 1
    assert session.scalar(select(func.count()).select_from(EmailMessage)) == 1


def test_without_smtp_host_mail_lands_in_maildir(session: Session, settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    for _ in range(2):
        SEND(make_ctx(session, settings, "job-4"),
             {"recipient": "anna", "template": "certification/application_received"})

    box = mailbox.Maildir(settings.var_dir / "mail", create=False)
    (msg,) = list(box)
    assert msg["Subject"] == "We hebben uw aanvraag voor certificering ontvangen"
    assert msg["To"] == "Anna de Vries <anna@example.org>"


def test_unknown_recipient_is_a_permanent_error(session: Session, settings: Settings) -> None:
    with pytest.raises(PermanentError, match="no user 'ghost'"):
        SEND(make_ctx(session, settings, "job-5"),
             {"recipient": "ghost", "template": "certification/application_received"})


def test_recipient_without_address_is_a_permanent_error(session: Session,
                                                        settings: Settings) -> None:
    user = add_user(session, "anna", "Anna de Vries")
    user.email = ""
    with pytest.raises(PermanentError, match="no valid email address"):
        SEND(make_ctx(session, settings, "job-6"),
             {"recipient": "anna", "template": "certification/application_received"})


def test_an_account_erased_on_request_gets_no_more_mail(session: Session, settings: Settings) -> None:
    """A mail queued before the erasure (a case's outbox job) and run after it: nothing goes
    out, nothing is written; the job fails for good and staff see why."""
    add_user(session, "anna", "Anna de Vries")
    privacy.anonymise(session, "anna", NOW)
    with pytest.raises(PermanentError, match="'anna' was anonymised on an erasure request; nothing was sent"):
        SEND(make_ctx(session, settings, "job-6b"),
             {"recipient": "anna", "template": "certification/application_received"})
    assert session.scalar(select(func.count()).select_from(EmailMessage)) == 0
    assert not (settings.var_dir / "mail").exists() or not list(mailbox.Maildir(settings.var_dir / "mail"))


def test_missing_template_variable_is_a_permanent_error(session: Session,
                                                        settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    with pytest.raises(PermanentError, match="'reason' is undefined"):
        SEND(make_ctx(session, settings, "job-7"),
             {"recipient": "anna", "template": "certification/not_granted"})


def test_server_down_is_retryable_and_a_retry_sends_once(
    session: Session, smtp_settings: Settings, smtp: tuple[Collector, int]
) -> None:
    add_user(session, "anna", "Anna de Vries")
    params = {"recipient": "anna", "template": "certification/application_cancelled"}
    down = smtp_settings.model_copy(update={"smtp_port": free_port()})

    with pytest.raises(HandlerError) as failure:
        SEND(make_ctx(session, down, "job-8"), params)
    assert not isinstance(failure.value, PermanentError)
    assert session.scalar(select(EmailMessage.status)) == "failed"

    result = SEND(make_ctx(session, smtp_settings, "job-8"), params)
    assert result["status"] == "sent"
    assert len(smtp[0].envelopes) == 1


class Refuser(Collector):
    """A server that knows no mailbox at all."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        return "550 5.1.1 no such mailbox"


def test_recipient_refused_by_the_server_is_a_permanent_error(session: Session,
                                                              settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    port = free_port()
    controller = Controller(Refuser(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(PermanentError, match="refused the recipient.*550"):
            SEND(make_ctx(session, settings.model_copy(update={"smtp_host": "127.0.0.1",
                                                                "smtp_port": port}), "job-9"),
                 {"recipient": "anna", "template": "certification/application_received"})
    finally:
        controller.stop()


def test_newsletter_skips_opted_out_and_never_resends(
    session: Session, smtp_settings: Settings, smtp: tuple[Collector, int]
) -> None:
    add_user(session, "anna", "Anna de Vries", language="nl")
    add_user(session, "john", "John Smith", language="en")
    add_user(session, "piet", "Piet Bakker", opt_out=True)
    context = {"body": "Nieuws over de hercertificering.\n\nEn meer."}

    sent = send_newsletter(session, make_ctx(session, smtp_settings, "-").now, smtp_settings,
                           "Nieuwsbrief maart 2026", "newsletter/issue", context)
    rerun = send_newsletter(session, make_ctx(session, smtp_settings, "-").now, smtp_settings,
                            "Nieuwsbrief maart 2026", "newsletter/issue", context)

    assert (sent, rerun) == (2, 0)
    assert sorted(e.rcpt_tos[0] for e in smtp[0].envelopes) == ["anna@example.org",
                                                                "john@example.org"]
    assert {m["Subject"] for m in smtp[0].messages()} == {"Nieuwsbrief maart 2026"}


def test_every_template_renders_in_both_languages() -> None:
    assert check_templates() == []


def test_check_templates_reports_an_unknown_variable(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    for lang in ("nl", "en"):
        (tmp_path / f"demo/hello.{lang}.txt").write_text("Subject: Hoi\n\n{{ recipient_name }}\n")
        (tmp_path / f"demo/hello.{lang}.html").write_text("<p>{{ recipient_nmae }}</p>\n")
    (tmp_path / "samples.json").write_text('{"demo/hello": {}}')

    problems = check_templates(tmp_path)

    assert problems == ["demo/hello.nl: 'recipient_nmae' is undefined",
                        "demo/hello.en: 'recipient_nmae' is undefined"]


def test_check_templates_reports_a_missing_language_and_sample(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo/hello.nl.txt").write_text("Subject: Hoi\n\nDag\n")
    (tmp_path / "demo/hello.nl.html").write_text("<p>Dag</p>\n")
    (tmp_path / "demo/bye.nl.txt").write_text("Subject: Dag\n\nDag\n")
    (tmp_path / "samples.json").write_text('{"demo/hello": {}}')

    problems = check_templates(tmp_path)

    assert problems == ["demo/bye: no sample context in samples.json",
                        "demo/hello.en: missing demo/hello.en.txt"]


def test_language_without_template_falls_back_to_dutch(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo/hello.nl.txt").write_text("Subject: Hoi\n\nDag {{ recipient_name }}\n")
    (tmp_path / "demo/hello.nl.html").write_text("<p>Dag</p>\n")

    rendered = render("demo/hello", "en", {"recipient_name": "John"}, tmp_path)

    assert (rendered.language, rendered.subject, rendered.text) == ("nl", "Hoi", "Dag John\n")


def test_money_and_dates_read_naturally_in_each_language() -> None:
    assert money("786.5") == "€ 786,50"
    assert money(1234.565, "en") == "€1,234.57"
    assert long_date("2029-02-28") == "28 februari 2029"
    assert long_date("2029-02-28", "en") == "28 February 2029"


def test_a_username_in_the_context_reaches_the_letter_as_a_name(session: Session, settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    add_user(session, "jjansen", "Jan Jansen")
    SEND(make_ctx(session, settings, "job-names"),
         {"recipient": "anna", "template": "certification/mentor_assigned", "context": {"mentor_username": "jjansen"}})
    (msg,) = list(mailbox.Maildir(settings.var_dir / "mail", create=False))
    body = msg.get_payload(0).get_payload(decode=True).decode() if msg.is_multipart() else msg.get_payload()
    assert "Jan Jansen" in body and "jjansen" not in body
    with pytest.raises(PermanentError, match="no user 'ghost'"):
        SEND(make_ctx(session, settings, "job-names-2"),
             {"recipient": "anna", "template": "certification/mentor_assigned", "context": {"mentor_username": "ghost"}})


# -- one SMTP session for many mails ------------------------------------------------------------
class PeerCollector(Collector):
    """Also notes which client connection each mail came over."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def test_mails_go_over_one_kept_session_which_is_reopened_when_the_server_closed_it(
        session: Session, settings: Settings) -> None:
    from certflow.services.email import close_smtp

    add_user(session, "anna", "Anna de Vries")
    port = free_port()
    mailer = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port})
    params = {"recipient": "anna", "template": "certification/granted",
              "context": {"register_number": "RL-2026-00007", "valid_until": "2029-03-02"}}
    first = PeerCollector()
    controller = Controller(first, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        for n in range(3):
            SEND(make_ctx(session, mailer, f"kept-{n}"), params)
    finally:
        controller.stop()  # drops the session certflow kept open
    assert len(first.envelopes) == 3 and len(set(first.peers)) == 1
    second = PeerCollector()
    controller = Controller(second, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        SEND(make_ctx(session, mailer, "after-restart"), params)
    finally:
        controller.stop()
        close_smtp()
    assert len(second.envelopes) == 1
    assert session.scalar(select(func.count()).select_from(EmailMessage)
                          .where(EmailMessage.status == "sent")) == 4


def test_two_sends_of_one_key_at_once_on_postgresql_mail_once(
        pg_url: str, smtp_settings: Settings, smtp: tuple[Collector, int]) -> None:
    """Two workers running the same e-mail job at the same moment (a redelivery while the
    first still runs): the second waits on the message's key until the first commits, then
    finds it sent and sends nothing; both report the same message."""
    import threading

    from certflow.store.db import session_scope

    with session_scope(pg_url) as s:
        add_user(s, "anna", "Anna de Vries")
    params = {"recipient": "anna", "template": "certification/application_received"}
    results: list[dict[str, Any]] = []
    with session_scope(pg_url) as first:
        results.append(SEND(make_ctx(first, smtp_settings, "job-twice"), params))
        second = threading.Thread(target=lambda: results.append(_send_in_own_transaction(
            pg_url, smtp_settings, "job-twice", params)))
        second.start()
        second.join(1.0)
        assert second.is_alive()  # waits on the key while the first is not committed
    second.join(10)
    assert not second.is_alive()
    assert len(smtp[0].envelopes) == 1
    assert results[0] == results[1] and results[0]["status"] == "sent"
    with session_scope(pg_url) as s:
        assert s.scalars(select(EmailMessage.status)).all() == ["sent"]


def _send_in_own_transaction(url: str, config: Settings, key: str,
                             params: dict[str, Any]) -> dict[str, Any]:
    from certflow.store.db import session_scope

    with session_scope(url) as s:
        return SEND(make_ctx(s, config, key), params)


def test_a_first_send_reads_no_row_by_its_key_before_writing_it(
        session: Session, smtp_settings: Settings, smtp: tuple[Collector, int]) -> None:
    """The row's insert (``ON CONFLICT (idempotency_key) DO NOTHING``) decides whether a key was
    sent; a look-up before it was a statement in every e-mail job. Run again, the key still
    sends nothing (test_same_key_sends_once) and a failed one is sent then
    (test_server_down_is_retryable_and_a_retry_sends_once)."""
    from sqlalchemy import event

    add_user(session, "anna", "Anna de Vries")
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(session.get_bind(), "before_cursor_execute", record)
    try:
        SEND(make_ctx(session, smtp_settings, "job-once"),
             {"recipient": "anna", "template": "certification/application_received"})
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", record)
    assert [s for s in seen if s.startswith("SELECT") and "FROM email_messages" in s] == []
    assert len(smtp[0].envelopes) == 1
