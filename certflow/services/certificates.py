"""Certificates: issuing one (register number, validity, PDF) and the English copy people order.

Used by the operators (handlers/certificates.py)
-----------------------------------------------
``certificates/issue``
    input:  ``{holder: str (username), level: str = "RL", specialisation: str | None = None,
    valid_from: ISO date | None = None (today in the Netherlands), valid_years: int | None =
    None (settings.certificate_validity_years), language: "nl" | "en" = "nl"}``
    result: ``{certificate_id, register_number, valid_from, valid_until}`` (dates ISO)
``certificates/english_copy``
    input:  ``{certificate_id: str}``
    result: ``{copy_id, certificate_id, register_number, language: "en"}``

``certificate_pdf(session, certificate_id, language=None)`` returns the PDF for a download;
the PDF itself is drawn by ``certflow.services.certificate_pdf``.

A certificate is valid from ``valid_from`` for ``valid_years`` calendar years; one issued on
29 February runs to 28 February. Register numbers are ``RL-<year>-<nnnnn>``, counted per year
of issue, and are never reused (see ``allocate_register_number``).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certflow.errors import Forbidden, NotFound
from certflow.localtime import LOCAL_TZ as LOCAL_ZONE
from certflow.registry import HandlerContext, HandlerError, PermanentError
from certflow.services.certificate_pdf import render_pdf
from certflow.services.documents import Document
from certflow.services.viewer import Viewer
from certflow.store.models import User
from certflow.store.register import Certificate, CertificateCopy, RegisterCounter
from certflow.i18n import Message, N_

REGISTER_PREFIX = "RL"
# The certifier's calendar: "today" and the year of issue are Dutch dates, not UTC ones.
# Statuses for which a copy may still be handed out; a withdrawn certificate is not reprinted.
COPYABLE = ("valid", "recertification_running")


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


# -- what a person may read ------------------------------------------------------------------------
def certificates_of(session: Session, viewer: Viewer, holder: str | None) -> list[dict[str, Any]]:
    """Staff list anyone's (or everyone's) certificates; anyone else only their own."""
    if not viewer.is_staff and holder not in (None, viewer.username):
        raise Forbidden(Message(N_("you may only list your own certificates")))
    query = select(Certificate).order_by(Certificate.valid_from.desc(),
                                         Certificate.register_number).limit(500)
    if holder or not viewer.is_staff:
        query = query.where(Certificate.holder == (holder or viewer.username))
    certs = session.scalars(query).all()
    copies = session.execute(
        select(CertificateCopy.certificate_id, CertificateCopy.language)
        .where(CertificateCopy.certificate_id.in_([c.id for c in certs]))).all()
    return [{"id": c.id, "holder": c.holder, "register_number": c.register_number,
             "level": c.level, "specialisation": c.specialisation, "status": c.status,
             "valid_from": c.valid_from.isoformat(), "valid_until": c.valid_until.isoformat(),
             "languages": sorted({c.language} | {lang for cid, lang in copies if cid == c.id})}
            for c in certs]


def certificate_document(session: Session, viewer: Viewer, certificate_id: str,
                         language: str | None) -> Document:
    cert = session.get(Certificate, certificate_id)
    if cert is None:
        raise NotFound(Message(N_("no certificate '%(certificate)s'"), certificate=certificate_id))
    if not viewer.is_staff and cert.holder != viewer.username:
        raise Forbidden(Message(N_("certificate %(certificate)s is not yours"), certificate=certificate_id))
    try:
        pdf = certificate_pdf(session, certificate_id, language)
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
    return Document(pdf, "application/pdf",
                    f"{cert.register_number}-{language or cert.language}.pdf")
