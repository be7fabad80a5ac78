"""Email to people, from Jinja2 templates, in their own language.

Used by the operator (handlers/email.py)
---------------------------------------
``email/send``
    input:  ``{recipient: str (username), template: str (e.g. "certification/granted"),
    context: dict = {}, attach_invoices: list[str] = []}``
    result: ``{email_id, status: "sent", to, subject, template, language, sent_at}``

Templates are ``handlers/templates/email/<template>.<lang>.txt`` and ``.<lang>.html``; the
first line of the .txt file is ``Subject: ...``. Besides the context passed in, every
template sees ``recipient_name`` (the user's display name), ``organisation``, ``iban``,
``portal_url`` (Mijn CMI, under ``settings.public_url``) and ``language``; a context with an
``invoice_number`` also gives ``invoice_url``, that invoice on the invoices page of Mijn CMI.
And the filters ``money`` and ``long_date``. A context key ending in
``_username`` also gives the template that person's display name under ``<prefix>_name``
(``{"mentor_username": "jan"}`` → ``mentor_name`` = "Jan Jansen"): letters name people, never
their login. StrictUndefined turns a missing
variable into an error rather than a blank in a letter. The recipient's language picks the
file ('nl' or 'en'); a template without that language falls back to Dutch.
A process owner may change a template in the studio: each deploy stores a new version in
``email_templates`` (certflow.services.email_templates), and the latest deployed version of a
file is used instead of the file itself; the files are version 0, used until then.
``samples.json`` beside the templates holds a sample context per template, and
``check_templates()`` renders them all, so a broken text is caught by a test, not a person.

``attach_invoices`` names invoices and credit notes (by number) of the recipient that go with
the mail: the stored PDF, byte for byte what ``GET /api/invoices/{number}/pdf`` serves, and, when
the customer is an organisation, the UBL e-invoice its bookkeeping reads in. Someone else's
invoice is refused: a mail never carries another person's financial data.

Delivery is SMTP when ``settings.smtp_host`` is set, over one session each worker thread keeps
open between mails (reopened once when the server has closed it); otherwise the maildir
``var_dir/mail``, so a development machine loses nothing.

Exactly once as far as SMTP allows: the message row (unique on the idempotency key) is
written before sending, in the caller's transaction, as sent (marked failed there if sending
fails), so a redelivered job finds it and sends nothing, and a concurrent one waits on the
key. The gap left: the mail went out but the caller's transaction then failed to commit, and
a retry sends it again. A duplicate mail is better than a lost one.

``send_newsletter(...)`` mails everyone who did not opt out, keyed per issue and person.
"""

from __future__ import annotations

import io
import json
import logging
import mailbox
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.generator import BytesGenerator
from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import EmailPolicy
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, formataddr, getaddresses, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    DictLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateRuntimeError,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, Field
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached, undefer_group

from certflow.i18n import Message, N_
from certflow.registry import HandlerContext, HandlerError, PermanentError
from certflow.services.accounts import is_erased
from certflow.settings import ROOT, Settings
from certflow.services.billing.invoices import ensure_documents
from certflow.store.base import new_id
from certflow.store.billing import DOCUMENTS, Invoice
from certflow.store.communications import EmailMessage
from certflow.store.models import User
from certflow.store.studio_texts import EmailTemplate

log = logging.getLogger(__name__)

# Templates stay beside the handlers that name them (process READMEs point there).
TEMPLATE_DIR = ROOT / "handlers" / "templates" / "email"
LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"
SMTP_TIMEOUT = 30.0
# Variables every template gets from the sender, with the values check_templates() uses.
SAMPLE_BASE = {"recipient_name": "Anna de Vries", "organisation": "Stichting CMI",
               "iban": "NL91 ABNA 0417 1643 00"}
SAMPLE_PUBLIC_URL = "https://cmi.example"
MONTHS = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}


class SendEmail(BaseModel):
    recipient: str = Field(min_length=1)
    # Slash-separated lowercase names only: a template name never walks out of the folder.
    template: str = Field(pattern=r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
    context: dict[str, Any] = Field(default_factory=dict)
    attach_invoices: list[str] = Field(default_factory=list, max_length=5)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    language: str


# --- presentation helpers (also used on certificates) ------------------------------------

def long_date(value: date | str, language: str = DEFAULT_LANGUAGE) -> str:
    """'1 maart 2026' / '1 March 2026': unambiguous in both languages, unlike 01-03-2026."""
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    months = MONTHS.get(language, MONTHS[DEFAULT_LANGUAGE])
    return f"{day.day} {months[day.month - 1]} {day.year}"


def money(value: Any, language: str = DEFAULT_LANGUAGE) -> str:
    """'€ 1.234,50' in Dutch, '€1,234.50' in English; amounts arrive as numbers or strings."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    text = f"{amount:,.2f}"
    if language == "en":
        return f"€{text}"
    return "€ " + text.translate(str.maketrans(",.", ".,"))


@pass_context
def _money_filter(ctx: Context, value: Any) -> str:
    return money(value, ctx.get("language", DEFAULT_LANGUAGE))


@pass_context
def _date_filter(ctx: Context, value: Any) -> str:
    return long_date(value, ctx.get("language", DEFAULT_LANGUAGE))


# --- rendering ---------------------------------------------------------------------------

Overrides = Mapping[str, str]


# What one mail's template may cost: process owners edit them in the studio, and a preview
# renders in the web process, a mail in a worker. The sandbox keeps a template to the values it
# is given (no attribute starting with an underscore, no unsafe method, range() capped), so
# ``cycler.__init__.__globals__.os`` is refused; these keep a loop from running on unbounded.
MAX_RENDER_SECONDS = 2.0
MAX_RENDER_CHARS = 1_000_000


# What rendering a template can raise besides a missing file: its own errors, and those of the
# expressions it evaluates ({{ 1/0 }}, range(10**9), a macro that calls itself).
RENDER_ERRORS = (TemplateError, ValueError, TypeError, ArithmeticError, LookupError, RecursionError)


class _TooCostly(TemplateRuntimeError):
    pass


class MailSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with a time limit per render checked at every call and
    attribute look-up the template makes (see ``_bounded``)."""

    _deadline = threading.local()

    def _check(self) -> None:
        deadline = getattr(self._deadline, "at", None)
        if deadline is not None and time.monotonic() > deadline:
            raise _TooCostly(f"the template took longer than {MAX_RENDER_SECONDS:g} s to render")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self._check()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        self._check()
        return super().getattr(obj, attribute)


def _bounded(env: "MailSandbox", template: Template, values: Mapping[str, Any]) -> str:
    """``template`` rendered within MAX_RENDER_SECONDS and MAX_RENDER_CHARS."""
    env._deadline.at = time.monotonic() + MAX_RENDER_SECONDS
    try:
        out, size = [], 0
        for chunk in template.generate(values):
            size += len(chunk)
            if size > MAX_RENDER_CHARS:
                raise _TooCostly(f"the rendered mail is longer than {MAX_RENDER_CHARS:,} characters")
            env._check()
            out.append(chunk)
        return "".join(out)
    finally:
        env._deadline.at = None


@lru_cache(maxsize=8)
def _environment(template_dir: Path, overrides: tuple[tuple[str, str], ...] = ()) -> MailSandbox:
    loader: BaseLoader = FileSystemLoader(template_dir)
    if overrides:
        loader = ChoiceLoader([DictLoader(dict(overrides)), loader])
    env = MailSandbox(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,  # a text mail ends with a line break, as mail readers expect
    )
    env.filters["money"] = _money_filter
    env.filters["long_date"] = _date_filter
    return env


def render(template: str, language: str, context: Mapping[str, Any],
           template_dir: Path = TEMPLATE_DIR, fallback: bool = True,
           overrides: Overrides | None = None) -> Rendered:
    """Render subject, text and HTML. Raises jinja2 errors or ValueError on a broken template.
    ``overrides`` ({file name: text}, e.g. the deployed versions) win over the files."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    if fallback and not (template_dir / f"{template}.{lang}.txt").is_file() \
            and f"{template}.{lang}.txt" not in (overrides or {}):
        lang = DEFAULT_LANGUAGE
    env = _environment(template_dir, tuple(sorted((overrides or {}).items())))
    values = {**context, "language": lang}
    name = f"{template}.{lang}.txt"
    first, _, text = _bounded(env, env.get_template(name), values).partition("\n")
    if not first.startswith("Subject:") or not first[len("Subject:"):].strip():
        raise ValueError(f"{name}: the first line must be 'Subject: ...'")
    html = _bounded(env, env.get_template(f"{template}.{lang}.html"), values)
    return Rendered(first[len("Subject:"):].strip(), text.lstrip("\n"), html, lang)


def sample_contexts(template_dir: Path = TEMPLATE_DIR) -> dict[str, Any]:
    """Each template's sample context (OSError/ValueError when a samples.json is broken)."""
    samples: dict[str, Any] = {}
    # One samples.json per folder, so each process keeps its own next to its templates.
    for path in sorted(template_dir.rglob("samples.json")):
        samples.update(json.loads(path.read_text("utf-8")))
    return samples


def check_templates(template_dir: Path = TEMPLATE_DIR, overrides: Overrides | None = None) -> list[str]:
    """Render every template in every language with its sample context; return the problems."""
    try:
        samples = sample_contexts(template_dir)
    except (OSError, ValueError) as exc:
        return [f"samples.json: {exc}"]
    names = _template_names(template_dir)
    problems: list[str] = [Message(N_("samples.json: no template %(template)r"), template=n)
                           for n in sorted(set(samples) - names)]
    for name in sorted(names):
        if name not in samples:
            problems.append(Message(N_("%(template)s: no sample context in samples.json"), template=name))
            continue
        for lang in LANGUAGES:
            try:
                values = {**SAMPLE_BASE, **samples[name]}
                values.update(portal_links(SAMPLE_PUBLIC_URL, values))
                render(name, lang, values, template_dir, fallback=False, overrides=overrides)
            except TemplateNotFound as exc:
                problems.append(Message(N_("%(template)s: missing %(file)s"), template=f"{name}.{lang}",
                                        file=exc.name))
            except RENDER_ERRORS as exc:
                problems.append(f"{name}.{lang}: {exc}")
    return problems


def _template_names(template_dir: Path) -> set[str]:
    names = set()
    for path in template_dir.rglob("*.*.*"):
        rel = path.relative_to(template_dir)
        if path.suffix in (".txt", ".html") and not any(p.startswith("_") for p in rel.parts):
            names.add(rel.as_posix().rsplit(".", 2)[0])
    return names


# --- delivery ----------------------------------------------------------------------------

class _HeaderClasses(HeaderRegistry):
    """The stdlib's header registry, keeping the class it makes for each header name (it made
    a new class for every header set, a third of the time it took to build an invoice mail),
    and the headers it parsed last: most of a mail's headers (the sender, each part's type and
    encoding) are the same in every mail, and parsing them was another third. A header is an
    immutable ``str``, so one parsed object serves every message that sets the same value."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}
        self._parsed = lru_cache(maxsize=KEPT_HEADERS)(super().__call__)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        made = self._made.get(name.lower())
        if made is None:
            made = self._made[name.lower()] = super().__getitem__(name)
        return made

    def __call__(self, name: str, value: str) -> BaseHeader:
        if type(value) is str:  # what is kept is looked up by its text
            return cast(BaseHeader, self._parsed(name, value))
        return super().__call__(name, value)


class _Policy(EmailPolicy):
    """The default policy (what ``EmailMessage()`` uses), keeping how it wrote out each header
    it wrote last: a kept header (``_HeaderClasses``) is the same object in every mail, and
    folding it the same work each time."""

    def fold_binary(self, name: str, value: str) -> bytes:
        key = (name, id(value), self.linesep, self.max_line_length, self.utf8, self.cte_type,
               self.refold_source)
        kept = _FOLDED.get(key)
        if kept is not None and kept[0] is value:  # the very object: its id was not reused
            return kept[1]
        folded = super().fold_binary(name, value)
        if len(_FOLDED) >= KEPT_HEADERS:
            _FOLDED.clear()
        _FOLDED[key] = (value, folded)
        return folded


# Per process (each worker thread builds its own mails; a lost entry is only folded again).
KEPT_HEADERS = 256
_FOLDED: dict[tuple[Any, ...], tuple[str, bytes]] = {}
POLICY = _Policy(header_factory=_HeaderClasses())


def _mime(row: EmailMessage, display_name: str, settings: Settings, now: datetime,
          attachments: Sequence[Attachment] = ()) -> MimeMessage:
    msg = MimeMessage(policy=POLICY)
    msg["From"] = settings.mail_from
    msg["To"] = formataddr((display_name, row.to_address))
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(now)
    # Stable across retries, so a receiving system can recognise a resent duplicate.
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "certflow.invalid"
    msg["Message-ID"] = f"<{row.id}@{domain}>"
    # RFC 3834: out-of-office robots should not answer.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(row.body_text)
    msg.add_alternative(row.body_html, subtype="html")
    for attachment in attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        msg.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                           filename=attachment.filename)
    return msg


class _Generator(BytesGenerator):
    """``BytesGenerator`` writing each part's text in one go, with the same line endings; the
    stdlib writes it line by line, two writes per base64 line of an attachment (some 1,800 for
    an invoice mail). Only for ``flatten(msg, linesep=LINESEP)``."""

    LINESEP = "\r\n"  # SMTP's, as smtplib's send_message writes it
    _LINE_END = re.compile(r"\r\n|\r|\n")  # email.generator.NLCRE

    def _write_lines(self, lines: str) -> None:
        if "\r" in lines:
            self.write(self._LINE_END.sub(self.LINESEP, lines))
        elif lines:  # line ends all \n (a base64 part's always): a tenth of the expression's time
            self.write(lines.replace("\n", self.LINESEP))

    @classmethod
    def _make_boundary(cls, text: bytes | None = None) -> str:
        """The stdlib's random boundary, refused (and numbered on, as the stdlib does) when the
        parts' text holds ``--`` and it anywhere: one substring search instead of the stdlib's
        multi-line regular expression over the whole text, the attachments' base64 included
        (a third of writing out an invoice mail). A stricter test: it also refuses a boundary
        the expression let through (with CRLF line ends its ``$`` never matched)."""
        boundary = candidate = super()._make_boundary()  # type: ignore[misc]  # not in the stubs
        counter = 0
        while text is not None and b"--" + candidate.encode("ascii") in text:
            candidate = f"{boundary}.{counter}"
            counter += 1
        return candidate


def as_bytes(msg: MimeMessage) -> bytes:
    """The message as smtplib's ``send_message`` puts it on the wire (CRLF line endings)."""
    out = io.BytesIO()
    _Generator(out, policy=msg.policy).flatten(msg, linesep=_Generator.LINESEP)
    return out.getvalue()


def deliver(msg: MimeMessage, settings: Settings) -> None:
    """Hand the message to the SMTP server, or to the maildir when none is configured."""
    if not settings.smtp_host:
        _to_maildir(msg, settings.var_dir / "mail")
        return
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        _send_smtp(msg, settings)
    except smtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(f"{rcpt}: {code} {reply!r}"
                           for rcpt, (code, reply) in exc.recipients.items())
        # A 5xx refusal (no such mailbox) will not heal by retrying; a 4xx one may.
        if all(500 <= code < 600 for code, _ in exc.recipients.values()):
            raise PermanentError(f"mail server {where} refused the recipient: {detail}") from exc
        raise HandlerError(f"mail server {where} deferred the recipient: {detail}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise HandlerError(f"could not send email via {where}: {exc}") from exc


class _Connections(threading.local):
    """This thread's open SMTP session and the settings it was opened with."""

    smtp: smtplib.SMTP | None = None
    opened_for: tuple[Any, ...] = ()


_SMTP = _Connections()


def _send_smtp(msg: MimeMessage, settings: Settings) -> None:
    """Send over this thread's SMTP session, kept open between mails: a connection, EHLO,
    STARTTLS and login per mail cost more than the mail (the yearly fee run sends thousands).
    A session the server closed meanwhile is opened again once; anything else is the
    caller's error (and the session is dropped)."""
    wanted = (settings.smtp_host, settings.smtp_port, settings.smtp_tls, settings.smtp_user,
              settings.smtp_password)
    sender = getaddresses([msg["From"]])[0][1]
    recipients = [address for _, address in getaddresses([msg["To"]])]
    # Flattened once, not on every try; an address that needs SMTPUTF8 is left to smtplib.
    data = as_bytes(msg) if "".join([sender, *recipients]).isascii() else None
    for fresh in (False, True):
        smtp = _SMTP.smtp if _SMTP.opened_for == wanted and not fresh else None
        if smtp is None:
            close_smtp()
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT)
            _SMTP.smtp, _SMTP.opened_for = smtp, wanted
            if settings.smtp_tls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            fresh = True
        try:
            if data is None:
                smtp.send_message(msg)
            else:
                smtp.sendmail(sender, recipients, data)
            return
        except smtplib.SMTPServerDisconnected:
            close_smtp()
            if fresh:
                raise
        except smtplib.SMTPRecipientsRefused:
            try:
                smtp.rset()  # the session itself is fine: ready for the next mail
            except (smtplib.SMTPException, OSError):
                close_smtp()
            raise
        except BaseException:
            close_smtp()
            raise


def close_smtp() -> None:
    """Close this thread's kept SMTP session, if any."""
    smtp, _SMTP.smtp, _SMTP.opened_for = _SMTP.smtp, None, ()
    if smtp is not None:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _to_maildir(msg: MimeMessage, path: Path) -> None:
    try:
        # Maildir(create=True) makes only the last directory; make the whole tree ourselves.
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(path, create=False).add(msg)
    except OSError as exc:
        raise HandlerError(f"could not write email to maildir {path}: {exc}") from exc


# --- sending ------------------------------------------------------------------------

def send_email(ctx: HandlerContext, data: SendEmail) -> dict[str, Any]:
    """Render, write the row and send, once per idempotency key: the row's insert decides
    (``_queue``), not a look-up before it (a statement in every job for what a run of the job
    again, rarely, meets). Such a run renders and checks the recipient and documents again,
    and then sends only what an earlier attempt left failed (with that row's documents)."""
    user = _recipient(ctx.session, data.recipient)
    context = _with_display_names(ctx.session, data.context)
    rendered = _render_for(user, data.template, context, ctx.settings, deployed_templates(ctx.session))
    # Refuse early; the same documents are then sent (not read from the database twice).
    attachments = invoice_attachments(ctx.session, user.username, data.attach_invoices, ctx.settings)
    row, written = _queue(ctx.session, ctx.idempotency_key, user, data.template, rendered,
                          ctx.now, data.attach_invoices)
    if written or row.status != "sent":
        _send_row(ctx.session, row, ctx.settings, ctx.now, attachments if written else None)
    return _result(row)


def send_to_address(session: Session, settings: Settings, now: datetime, *, address: str,
                    name: str, language: str, template: str, context: Mapping[str, Any]) -> None:
    """Mail someone who has no account (yet): a sign-up's confirmation link. Written as
    ``send_email`` writes a mail (the studio's deployed version of the template, the same
    variables, ``recipient_name`` the name they gave) and delivered, but not kept in
    ``email_messages``: that record belongs to an account (Mijn CMI's export, erasure), and
    this person has none. Sent once, by the caller; no idempotency key."""
    rendered = _render_to(name, language, template, context, settings, deployed_templates(session))
    message = EmailMessage(id=new_id(), to_address=address, subject=rendered.subject,
                           body_text=rendered.text, body_html=rendered.html)
    deliver(_mime(message, name, settings, now), settings)


def _by_key(session: Session, key: str) -> EmailMessage | None:
    return session.scalar(select(EmailMessage).where(EmailMessage.idempotency_key == key))


# Statements built once: built per mail (``session.get`` builds its own each time) they cost
# more than running them.
_USER = select(User).where(User.username == bindparam("username"))
_INVOICE = (select(Invoice).where(Invoice.number == bindparam("number"))
            # its documents with it (attached); the PDF, if it is rendered here, needs the lines
            .options(undefer_group(DOCUMENTS), joinedload(Invoice.lines)))
_TEMPLATES = select(EmailTemplate.name, EmailTemplate.content).order_by(EmailTemplate.version)


def _user(session: Session, username: str) -> User | None:
    return session.execute(_USER, {"username": username}).scalar_one_or_none()


def _recipient(session: Session, username: str) -> User:
    user = _user(session, username)
    if user is None:
        raise PermanentError(f"email/send: no user {username!r}; nothing was sent")
    if is_erased(user):
        raise PermanentError(f"email/send: the account {username!r} was anonymised on an erasure "
                             "request; nothing was sent")
    if not user.email or "@" not in user.email:
        raise PermanentError(
            f"email/send: user {username!r} has no valid email address; add one and retry"
        )
    return user


def _with_display_names(session: Session, context: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(context)
    for key, username in context.items():
        if key.endswith("_username") and isinstance(username, str):
            person = _user(session, username)
            if person is None:
                raise PermanentError(f"email/send: {key}: no user {username!r}; nothing was sent")
            values[key.removesuffix("_username") + "_name"] = person.display_name
    return values


def deployed_templates(session: Session) -> dict[str, str]:
    """The latest deployed version of every template edited in the studio, by file name;
    the files in TEMPLATE_DIR are version 0 and serve every other name."""
    latest: dict[str, str] = {}
    for name, content in session.execute(_TEMPLATES):
        latest[name] = content
    return latest


def _render_for(user: User, template: str, context: Mapping[str, Any],
                settings: Settings, overrides: Overrides | None = None) -> Rendered:
    return _render_to(user.display_name, user.language, template, context, settings, overrides)


def _render_to(name: str, language: str, template: str, context: Mapping[str, Any],
               settings: Settings, overrides: Overrides | None = None) -> Rendered:
    # The sender's own variables win: a process cannot address someone by another name.
    values = {**context, "recipient_name": name,
              "organisation": settings.supplier_name, "iban": _grouped(settings.supplier_iban),
              **portal_links(settings.public_url, context)}
    try:
        return render(template, language, values, overrides=overrides)
    except TemplateNotFound as exc:
        raise PermanentError(f"email/send: no email template {template!r} ({exc.name})") from exc
    except RENDER_ERRORS as exc:
        raise PermanentError(f"email/send: template {template!r} failed: {exc}") from exc


def portal_links(public_url: str, context: Mapping[str, Any]) -> dict[str, str]:
    """Links into Mijn CMI: the portal, and the invoice the mail is about (its row on the
    invoices page; signing in first keeps the address)."""
    base = public_url.rstrip("/")
    links = {"portal_url": f"{base}/mijn"}
    number = context.get("invoice_number")
    if number:
        links["invoice_url"] = f"{base}/mijn/invoices#invoice-{quote(str(number), safe='')}"
    return links


def _grouped(iban: str) -> str:
    """IBANs are read and typed over in groups of four; that is how people expect them."""
    compact = iban.replace(" ", "")
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


# A message's row, or nothing when its key is taken (``_queue``); PostgreSQL and SQLite
# (3.35+) both read it. Text, because SQLAlchemy compiles its dialects' ON CONFLICT inserts
# anew on every execution (they are not cached), which cost more than the insert itself.
_EMAILS = EmailMessage.__table__
_INSERT = text(
    f"INSERT INTO {EmailMessage.__tablename__} ({', '.join(_EMAILS.c.keys())}) "
    f"VALUES ({', '.join(':' + name for name in _EMAILS.c.keys())}) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
).bindparams(*(bindparam(column.name, type_=column.type) for column in _EMAILS.c))


def _queue(session: Session, key: str, user: User, template: str, rendered: Rendered,
           now: datetime, invoices: list[str]) -> tuple[EmailMessage, bool]:
    """The message's row, written before the mail is handed over, and True; or the row a
    concurrent send of the same key committed, and False. Written as sent (at ``now``): the
    same transaction marks it failed if the hand-over fails (``_send_row``), and nobody
    reads it before that commits.

    One statement: the unique key decides (``ON CONFLICT DO NOTHING``; a concurrent insert of
    the key waits for the other transaction), where a savepoint around an ORM insert cost
    three round trips and a status UPDATE after sending a fourth."""
    values = dict(
        id=new_id(), idempotency_key=key, recipient=user.username, to_address=user.email,
        subject=rendered.subject, template=template, language=rendered.language,
        body_text=rendered.text, body_html=rendered.html, status="sent", sent_at=now,
        created_at=now, error=None, attached_invoices=list(invoices),
    )
    written = session.connection().execute(_INSERT, values).first()
    if written is None:
        existing = _by_key(session, key)
        if existing is None:  # gone again since: the job's retry looks afresh
            raise HandlerError(f"email/send: the message of key {key!r} vanished; retry")
        return existing, False
    row = EmailMessage(**values)
    make_transient_to_detached(row)  # the row just inserted, as if loaded: changes UPDATE it
    session.add(row)
    return row, True


def invoice_attachments(session: Session, recipient: str, numbers: list[str],
                        settings: Settings) -> list[Attachment]:
    """The documents of the recipient's invoices ``numbers``: each one's PDF, and its UBL when
    the customer is an organisation (that is what its bookkeeping reads in). An invoice made
    in bulk gets them rendered and stored here, once (billing.invoices.ensure_documents)."""
    out = []
    for number in numbers:
        invoice = session.execute(_INVOICE, {"number": number.strip()}).unique().scalar_one_or_none()
        if invoice is None:
            raise PermanentError(f"email/send: no invoice {number!r} to attach; nothing was sent")
        if invoice.customer_username != recipient:
            raise PermanentError(f"email/send: invoice {number} is not {recipient!r}'s; "
                                 "nothing was sent")
        ensure_documents(session, invoice, settings)
        assert invoice.pdf is not None
        out.append(Attachment(f"{invoice.number}.pdf", "application/pdf", invoice.pdf))
        if invoice.customer_type == "organisation" and invoice.ubl_xml:
            out.append(Attachment(f"{invoice.number}.xml", "application/xml",
                                  invoice.ubl_xml.encode()))
    return out


def _send_row(session: Session, row: EmailMessage, settings: Settings, now: datetime,
              attachments: list[Attachment] | None = None) -> None:
    user = session.get(User, row.recipient)
    if attachments is None:
        attachments = invoice_attachments(session, row.recipient, list(row.attached_invoices or []),
                                          settings)
    try:
        deliver(_mime(row, user.display_name if user else "", settings, now, attachments), settings)
    except Exception as exc:
        row.status, row.sent_at, row.error = "failed", None, str(exc)
        session.flush()
        raise
    if row.status != "sent":  # a retry of a row an earlier attempt left failed
        row.status, row.sent_at, row.error = "sent", now, None
        session.flush()


def _result(row: EmailMessage) -> dict[str, Any]:
    # The case's data keeps it (staff see it in the monitor): who, by username, not the
    # address, which the person may change or have erased while the case is kept.
    return {
        "email_id": row.id, "status": row.status, "recipient": row.recipient, "subject": row.subject,
        "template": row.template, "language": row.language,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }


# --- newsletter --------------------------------------------------------------------------

def send_newsletter(session: Session, now: datetime, settings: Settings, subject: str,
                    template: str, context: Mapping[str, Any], *, issue: str | None = None) -> int:
    """Mail one newsletter issue to everyone who did not opt out; return how many went out now.

    Each message is keyed ``newsletter:<issue>:<username>`` (the issue defaults to the subject),
    so after an interruption a rerun mails only those not yet reached. ``subject`` is passed to
    the template as ``subject``. A person whose data is unusable is logged and skipped rather
    than stopping the issue; a server failure (HandlerError) stops it, to be rerun.
    """
    issue_key = issue or re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:80]
    readers = session.scalars(
        select(User).where(User.newsletter_opt_out.is_(False)).order_by(User.username)
    ).all()
    sent = 0
    for user in readers:
        key = f"newsletter:{issue_key}:{user.username}"
        done = _by_key(session, key)
        if done is not None and done.status == "sent":
            continue
        ctx = HandlerContext(session=session, now=now, idempotency_key=key, settings=settings)
        data = SendEmail(recipient=user.username, template=template,
                         context={**context, "subject": subject})
        try:
            send_email(ctx, data)
        except PermanentError as exc:
            log.warning("newsletter %s: skipped %s: %s", issue_key, user.username, exc)
            continue
        sent += 1
    return sent


def unknown_template(template: str, template_dir: Path = TEMPLATE_DIR) -> str | None:
    """Why no letter can be written from ``template`` (it does not exist), or None."""
    if template in _template_names(template_dir):
        return None
    return Message(N_("no template %(template)r in handlers/templates/email"), template=template)
