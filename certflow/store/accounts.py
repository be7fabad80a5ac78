"""Tables of access: API tokens, browser sessions, sign-in attempts, password resets,
sign-ups and e-mail address changes waiting for their confirmation by mail, and the mail that
forms asked for.

Every secret a person holds (API token, session cookie, reset or confirmation link) is stored
only as its SHA-256, so a copy of the database lets no one in. Rows carry their own expiry; the
accounts service decides what is still valid (certflow.services.accounts).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from certflow.store.base import Base


class ApiToken(Base):
    """A token for scripts (``Authorization: Bearer``): expires, and can be revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    # None: never expires (only the demo's tokens; `certflow token create` sets one).
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser. The cookie holds a random id; this row holds its hash, the
    CSRF token of the session's forms and when it stops being valid."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # The earlier of (last_seen + idle timeout) and (created + absolute lifetime).
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")


class SignInAttempt(Base):
    """One failed sign-in, per e-mail address and per client IP. Counted over a window to
    slow down password guessing; kept in the database so every web process sees them."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_email_at", "email", "at"),
        Index("ix_sign_in_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(200))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class PasswordReset(Base):
    """A password-reset link sent by e-mail: single use, expires."""

    __tablename__ = "password_resets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PendingSignUp(Base):
    """A candidate's sign-up until its link in the mail is followed (certflow.services.sign_ups):
    what the form gave, cleaned, with the password's argon2 hash. Personal data of someone
    without an account yet: deleted when confirmed, and once expired by the next sign-up,
    confirmation or sign-in."""

    __tablename__ = "pending_sign_ups"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # One per address: a newer sign-up replaces the older (certflow.services.sign_ups.start).
    email: Mapped[str] = mapped_column(String(200), index=True, unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(5))
    address: Mapped[dict[str, Any]]
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # Wrong passwords given at the link, over its whole life (at the limit it is deleted).
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")


class EmailChange(Base):
    """A person's own new e-mail address until the link mailed to it is followed
    (certflow.services.email_changes). One per account: a newer request replaces the older.
    Personal data of the account holder: in their export, erased with them."""

    __tablename__ = "email_changes"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), unique=True)
    new_email: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class MailRequest(Base):
    """A form anyone may post asked certflow to mail an address (a password reset, a sign-up's
    link): counted per address and per client over a window, so nobody can make certflow mail
    a stranger a hundred times. Only SHA-256s of the address and the IP are kept, and rows
    older than the window are deleted as new ones come (certflow.services.access)."""

    __tablename__ = "mail_requests"
    __table_args__ = (
        Index("ix_mail_requests_email_at", "kind", "email_hash", "at"),
        Index("ix_mail_requests_ip_at", "ip_hash", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    email_hash: Mapped[str] = mapped_column(String(64))
    ip_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
