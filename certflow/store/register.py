"""Certificates and the public Register Loopbaanprofessional.

A ``Certificate`` is what the certifier issued (with its PDF); a ``RegisterEntry`` is the one
public line per professional, pointing at their current certificate; ``RegisterHistory`` is
the append-only account of every change to an entry, which is what an auditor asks for.
Register numbers come from ``register_counters`` (one row per year, locked while a number is
taken) so concurrent workers never hand out the same number.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from certflow.store.base import Base, new_id

CERTIFICATE_STATUSES = ("valid", "recertification_running", "lapsed", "suspended", "withdrawn")


class RegisterCounter(Base):
    __tablename__ = "register_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Certificate(Base):
    __tablename__ = "certificates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    holder: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    # "RL-2026-00001"; every certificate, a recertification too, gets its own number.
    register_number: Mapped[str] = mapped_column(String(20), unique=True)
    level: Mapped[str] = mapped_column(String(20), default="RL")
    specialisation: Mapped[str | None] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    # One of CERTIFICATE_STATUSES.
    status: Mapped[str] = mapped_column(String(30), default="valid")
    language: Mapped[str] = mapped_column(String(5), default="nl")
    # Read when asked for (a download): lists of certificates use the other columns.
    pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime]


class CertificateCopy(Base):
    """A paid-for rendering of a certificate in another language (the English certificate)."""

    __tablename__ = "certificate_copies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    language: Mapped[str] = mapped_column(String(5))
    pdf: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_at: Mapped[datetime]


class RegisterEntry(Base):
    __tablename__ = "register_entries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    holder: Mapped[str] = mapped_column(ForeignKey("users.username"), unique=True)
    register_number: Mapped[str] = mapped_column(String(20), index=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"))
    status: Mapped[str] = mapped_column(String(30))
    valid_until: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime]
    # Who guided this professional: an assessor may be neither (conflict of interest).
    mentor: Mapped[str | None] = mapped_column(String(100))
    supervisor: Mapped[str | None] = mapped_column(String(100))


class RegisterHistory(Base):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "register_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("register_entries.id"), index=True)
    # entered | extended | recertification_started | lapsed | suspended | withdrawn
    action: Mapped[str] = mapped_column(String(30))
    certificate_id: Mapped[str] = mapped_column(String(32))
    register_number: Mapped[str] = mapped_column(String(20))
    old_status: Mapped[str | None] = mapped_column(String(30))
    new_status: Mapped[str] = mapped_column(String(30))
    old_valid_until: Mapped[date | None] = mapped_column(Date)
    new_valid_until: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
