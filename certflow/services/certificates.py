"""Certificates: issuing one (register number, validity, PDF) and the English copy people order.

Operators
---------
``certificates/issue``
    input:  ``{holder: str (username), level: str = "RL", specialisation: str | None = None,
    valid_from: ISO date | None = None (today in the Netherlands), valid_years: int | None =
    None (settings.certificate_validity_years), language: "nl" | "en" = "nl"}``
    result: ``{certificate_id, register_number, valid_from, valid_until}`` (dates ISO)
``certificates/english_copy``
    input:  ``{certificate_id: str}``
    result: ``{copy_id, certificate_id, register_number, language: "en"}``

``certificate_pdf(session, certificate_id, language=None)`` returns the PDF for a download.

A certificate is valid from ``valid_from`` for ``valid_years`` calendar years; one issued on
29 February runs to 28 February. Register numbers are ``RL-<year>-<nnnnn>``, counted per year
of issue, and are never reused (see ``allocate_register_number``).
"""

from __future__ import annotations

from datetime import date, datetime
from io import BytesIO
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certflow.store.models import User
from certflow.store.register import Certificate, CertificateCopy, RegisterCounter
from handlers import HandlerContext, HandlerError, PermanentError, handler
from handlers.email import long_date

REGISTER_PREFIX = "RL"
# The certifier's calendar: "today" and the year of issue are Dutch dates, not UTC ones.
LOCAL_ZONE = ZoneInfo("Europe/Amsterdam")
# Statuses for which a copy may still be handed out; a withdrawn certificate is not reprinted.
COPYABLE = ("valid", "recertification_running")
INK = colors.HexColor("#1d5c63")

TEXT = {
    "nl": {
        "title": "Certificaat", "declares": "{issuer} verklaart hierbij dat",
        "statement": "voldoet aan de eisen voor certificering als loopbaanprofessional en is "
                     "ingeschreven in het Register Loopbaanprofessional.",
        "register_number": "Registernummer", "level": "Niveau",
        "specialisation": "Specialisatie", "valid_from": "Geldig vanaf",
        "valid_until": "Geldig tot", "issued": "Uitgegeven op", "signed": "Namens {issuer}",
        "verify": "De actuele status van dit certificaat is na te gaan in het openbare "
                  "Register Loopbaanprofessional.",
    },
    "en": {
        "title": "Certificate", "declares": "{issuer} hereby declares that",
        "statement": "meets the requirements for certification as a career professional and "
                     "is entered in the Register Loopbaanprofessional (Register of Career "
                     "Professionals).",
        "register_number": "Register number", "level": "Level",
        "specialisation": "Specialisation", "valid_from": "Valid from",
        "valid_until": "Valid until", "issued": "Issued on", "signed": "On behalf of {issuer}",
        "verify": "The current status of this certificate can be checked in the public "
                  "Register Loopbaanprofessional.",
    },
}
LEVELS = {"RL": {"nl": "Loopbaanprofessional (RL)", "en": "Career Professional (RL)"}}


class IssueCertificate(BaseModel):
    holder: str = Field(min_length=1)
    level: str = Field(default="RL", min_length=1, max_length=20)
    specialisation: str | None = Field(default=None, max_length=200)
    valid_from: date | None = None
    valid_years: int | None = Field(default=None, ge=1, le=10)
    language: Literal["nl", "en"] = "nl"

    @field_validator("specialisation")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        # Diagrams pass every parameter as an expression; an empty one means "none".
        if value is None or not value.strip():
            return None
        return value.strip()


class CopyCertificate(BaseModel):
    certificate_id: str = Field(min_length=1)


def add_years(start: date, years: int) -> date:
    """Same day ``years`` later; 29 February becomes 28 February in a non-leap year."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return start.replace(year=start.year + years, day=28)


def allocate_register_number(session: Session, year: int) -> str:
    """Take the next register number of ``year``.

    The year's counter row is locked (SELECT ... FOR UPDATE) until the caller's transaction
    ends, so concurrent workers queue behind each other instead of sharing a number. SQLite
    ignores FOR UPDATE; there BEGIN IMMEDIATE (certflow.store.db) serialises writers already.
    Unsafe only if the caller commits between taking a number and using it: that leaves a
    gap, never a duplicate (``certificates.register_number`` is unique as well).
    """
    counter = _lock_counter(session, year)
    if counter is None:
        try:
            with session.begin_nested():
                session.add(RegisterCounter(year=year, last_number=0))
        except IntegrityError:
            pass  # another worker created the year's row first; we lock theirs below
        counter = _lock_counter(session, year)
        if counter is None:
            raise HandlerError(f"register counter for {year} could not be created")
    counter.last_number += 1
    session.flush()
    return f"{REGISTER_PREFIX}-{year}-{counter.last_number:05d}"


def _lock_counter(session: Session, year: int) -> RegisterCounter | None:
    stmt = (select(RegisterCounter).where(RegisterCounter.year == year).with_for_update()
            .execution_options(populate_existing=True))
    return session.scalar(stmt)


@handler("certificates/issue")
def issue_certificate(ctx: HandlerContext, data: IssueCertificate) -> dict[str, Any]:
    done = _by_key(ctx.session, Certificate, ctx.idempotency_key)
    if done is not None:
        return _issued(done)
    holder = _holder(ctx.session, data.holder)
    valid_from = data.valid_from or ctx.now.astimezone(LOCAL_ZONE).date()
    years = data.valid_years or ctx.settings.certificate_validity_years
    try:
        # Number and certificate in one savepoint: losing the key race returns the number too.
        with ctx.session.begin_nested():
            cert = Certificate(
                idempotency_key=ctx.idempotency_key, holder=holder.username,
                register_number=allocate_register_number(
                    ctx.session, ctx.now.astimezone(LOCAL_ZONE).year),
                level=data.level, specialisation=data.specialisation, valid_from=valid_from,
                valid_until=add_years(valid_from, years), status="valid",
                language=data.language, created_at=ctx.now,
            )
            ctx.session.add(cert)
    except IntegrityError:
        done = _by_key(ctx.session, Certificate, ctx.idempotency_key)
        if done is None:
            raise
        return _issued(done)
    cert.pdf = render_pdf(cert, holder.display_name, ctx.settings.supplier_name, data.language)
    ctx.session.flush()
    return _issued(cert)


@handler("certificates/english_copy")
def english_copy(ctx: HandlerContext, data: CopyCertificate) -> dict[str, Any]:
    done = _by_key(ctx.session, CertificateCopy, ctx.idempotency_key)
    if done is None:
        cert = ctx.session.get(Certificate, data.certificate_id)
        if cert is None:
            raise PermanentError(
                f"certificates/english_copy: no certificate {data.certificate_id!r}"
            )
        if cert.status not in COPYABLE:
            raise PermanentError(
                f"certificates/english_copy: certificate {cert.register_number} is {cert.status}; "
                "no copy is issued for it"
            )
        holder = _holder(ctx.session, cert.holder)
        pdf = render_pdf(cert, holder.display_name, ctx.settings.supplier_name, "en")
        copy = CertificateCopy(idempotency_key=ctx.idempotency_key, certificate_id=cert.id,
                               language="en", pdf=pdf, created_at=ctx.now)
        try:
            with ctx.session.begin_nested():
                ctx.session.add(copy)
            done = copy
        except IntegrityError:
            done = _by_key(ctx.session, CertificateCopy, ctx.idempotency_key)
            if done is None:
                raise
    cert = ctx.session.get(Certificate, done.certificate_id)
    return {"copy_id": done.id, "certificate_id": done.certificate_id,
            "register_number": cert.register_number if cert else None, "language": done.language}


def certificate_pdf(session: Session, certificate_id: str, language: str | None = None) -> bytes:
    """The certificate as issued, or (with ``language``) the copy ordered in that language."""
    cert = session.get(Certificate, certificate_id)
    if cert is None:
        raise LookupError(f"no certificate {certificate_id!r}")
    if language is None or language == cert.language:
        if cert.pdf is None:
            raise LookupError(f"certificate {cert.register_number} has no PDF")
        return cert.pdf
    copy = session.scalars(
        select(CertificateCopy)
        .where(CertificateCopy.certificate_id == cert.id, CertificateCopy.language == language)
        .order_by(CertificateCopy.created_at.desc())
    ).first()
    if copy is None:
        raise LookupError(f"no {language} copy of certificate {cert.register_number} was ordered")
    return copy.pdf


def _by_key(session: Session, model: type[Any], key: str) -> Any:
    return session.scalar(select(model).where(model.idempotency_key == key))


def _holder(session: Session, username: str) -> User:
    user = session.get(User, username)
    if user is None:
        raise PermanentError(f"certificates: no user {username!r} to certify")
    if not user.display_name.strip():
        raise PermanentError(f"certificates: user {username!r} has no name to print")
    return user


def _issued(cert: Certificate) -> dict[str, Any]:
    return {"certificate_id": cert.id, "register_number": cert.register_number,
            "valid_from": cert.valid_from.isoformat(), "valid_until": cert.valid_until.isoformat()}


# --- the PDF -----------------------------------------------------------------------------

def render_pdf(cert: Certificate, holder_name: str, issuer: str, language: str) -> bytes:
    """An A4 certificate. ``invariant`` keeps the bytes identical for identical input, so a
    re-render (a copy, a retry) can be compared with what was issued."""
    text = TEXT.get(language, TEXT["nl"])
    buf = BytesIO()
    pdf = Canvas(buf, pagesize=A4, invariant=True)
    pdf.setTitle(f"{text['title']} {cert.register_number}")
    pdf.setAuthor(issuer)
    pdf.setSubject(holder_name)
    width, height = A4
    _frame(pdf, width, height)
    _heading(pdf, width, height, issuer, text)
    _declaration(pdf, width, height, holder_name, issuer, text)
    _details(pdf, width, _detail_rows(cert, language, text))
    _signature(pdf, width, cert.created_at, issuer, language, text)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def _frame(pdf: Canvas, width: float, height: float) -> None:
    pdf.setStrokeColor(INK)
    pdf.setLineWidth(3)
    pdf.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)
    pdf.setLineWidth(0.8)
    pdf.rect(16 * mm, 16 * mm, width - 32 * mm, height - 32 * mm)


def _heading(pdf: Canvas, width: float, height: float, issuer: str, text: dict[str, str]) -> None:
    pdf.setFillColor(INK)
    pdf.setFont("Helvetica-Bold", 13)
    pdf.drawCentredString(width / 2, height - 40 * mm, issuer.upper())
    pdf.setFont("Helvetica", 11)
    pdf.drawCentredString(width / 2, height - 46 * mm, "Register Loopbaanprofessional")
    pdf.setFont("Times-Bold", 44)
    pdf.drawCentredString(width / 2, height - 75 * mm, text["title"])


def _declaration(pdf: Canvas, width: float, height: float, holder_name: str, issuer: str,
                 text: dict[str, str]) -> None:
    pdf.setFillColor(colors.black)
    pdf.setFont("Helvetica", 12)
    pdf.drawCentredString(width / 2, height - 95 * mm, text["declares"].format(issuer=issuer))
    # Long names shrink to fit between the margins rather than run off the page.
    size = min(30.0, 30.0 * (width - 60 * mm) / stringWidth(holder_name, "Times-BoldItalic", 30))
    pdf.setFont("Times-BoldItalic", size)
    pdf.drawCentredString(width / 2, height - 115 * mm, holder_name)
    pdf.setStrokeColor(INK)
    pdf.line(45 * mm, height - 119 * mm, width - 45 * mm, height - 119 * mm)
    pdf.setFont("Helvetica", 12)
    y = height - 130 * mm
    for line in simpleSplit(text["statement"], "Helvetica", 12, width - 70 * mm):
        pdf.drawCentredString(width / 2, y, line)
        y -= 6 * mm


def _detail_rows(cert: Certificate, language: str, text: dict[str, str]) -> list[tuple[str, str]]:
    level = LEVELS.get(cert.level, {}).get(language, cert.level)
    rows = [(text["register_number"], cert.register_number), (text["level"], level)]
    if cert.specialisation:
        rows.append((text["specialisation"], cert.specialisation))
    rows += [(text["valid_from"], long_date(cert.valid_from, language)),
             (text["valid_until"], long_date(cert.valid_until, language))]
    return rows


def _details(pdf: Canvas, width: float, rows: list[tuple[str, str]]) -> None:
    y = 125 * mm
    for label, value in rows:
        pdf.setFont("Helvetica", 11)
        pdf.drawRightString(width / 2 - 4 * mm, y, f"{label}:")
        pdf.setFont("Helvetica-Bold", 11)
        pdf.drawString(width / 2 + 4 * mm, y, value)
        y -= 8 * mm


def _signature(pdf: Canvas, width: float, issued: datetime, issuer: str, language: str,
               text: dict[str, str]) -> None:
    pdf.setFont("Helvetica", 11)
    issued_on = long_date(issued.astimezone(LOCAL_ZONE).date(), language)
    pdf.drawString(30 * mm, 62 * mm, f"{text['issued']} {issued_on}")
    pdf.line(width - 95 * mm, 62 * mm, width - 30 * mm, 62 * mm)
    pdf.drawCentredString(width - 62.5 * mm, 56 * mm, text["signed"].format(issuer=issuer))
    pdf.setFont("Helvetica-Oblique", 9)
    pdf.setFillColor(colors.grey)
    pdf.drawCentredString(width / 2, 26 * mm, text["verify"])
