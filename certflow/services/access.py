"""Getting in: passwords, sign-in with its rate limit, browser sessions, API tokens and
password resets.

- Passwords are argon2id hashes (argon2-cffi's defaults); an unknown e-mail address costs
  the same hash as a wrong password, so timing tells nothing.
- Sign-in is refused for a while after too many failures for one e-mail address or from one
  IP address in a window (settings ``sign_in_*``); failures are rows, so every web process
  counts the same ones. A sign-up's confirmation asks for its password too, and counts its
  wrong ones here (certflow.services.sign_ups).
- A browser session is a random id in a cookie; the database keeps its SHA-256, the CSRF
  token of its forms, and an idle and an absolute expiry.
- API tokens (for scripts) and reset links are random too, stored as SHA-256, shown once.
- Mail that anyone can ask for (a reset link, a sign-up's link) is limited per address and per
  client IP in a window (``mail_request``), counted alike for every address, so the limit
  tells nothing about who has an account.

Security times use the wall clock, not certflow's movable business clock: moving the demo's
clock a month forward should fire timers, not sign everyone out.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, bindparam, delete, func, select
from sqlalchemy.orm import Session

from certflow.errors import CertflowError, Forbidden, InvalidInput, NotFound
from certflow.i18n import N_, Message
from certflow.registry import HandlerContext
from certflow.services.accounts import Account, account_of, by_email
from certflow.services.email import SendEmail, send_email
from certflow.settings import Settings, get_settings
from certflow.store.accounts import (ApiToken, EmailChange, MailRequest, PasswordReset,
                                     PendingSignUp, SignInAttempt, WebSession)
from certflow.store.models import User

MIN_PASSWORD = 10


@lru_cache(maxsize=4)
def _hasher_for(time_cost: int, memory_kib: int) -> tuple[PasswordHasher, str]:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    # Verified against when the e-mail address is unknown, so both paths cost one argon2 run.
    return hasher, hasher.hash("certflow-no-such-account")


def _hasher() -> tuple[PasswordHasher, str]:
    settings = get_settings()
    return _hasher_for(settings.argon2_time_cost, settings.argon2_memory_kib)


def wall_now() -> datetime:
    return datetime.now(timezone.utc)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# -- passwords ---------------------------------------------------------------------------------

def password_problem(password: str, email: str) -> str | None:
    """Why a new password is not good enough, or None."""
    if len(password) < MIN_PASSWORD:
        return N_("Use at least 10 characters.")
    if len(password) > 200:
        return N_("Use at most 200 characters.")
    if email and password.strip().lower() == email.strip().lower():
        return N_("Do not use your e-mail address as your password.")
    return None


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def set_password(session: Session, username: str, password: str) -> None:
    user = session.get(User, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    problem = password_problem(password, user.email)
    if problem:
        raise InvalidInput(problem, fields={"password": problem})
    user.password_hash = hash_password(password)
    # A new password ends every other way in that relied on the old one.
    session.execute(delete(WebSession).where(WebSession.username == username))
    session.flush()


# -- sign-in -------------------------------------------------------------------------------------

class SignInRefused(CertflowError):
    """Wrong e-mail/password (one message for both), or too many attempts. ``message`` is an
    English text marked for translation, with ``{minutes}`` to fill in."""

    status = 401

    def __init__(self, message: str, retry_minutes: int = 0) -> None:
        super().__init__(message)
        self.retry_minutes = retry_minutes


def sign_in(session: Session, settings: Settings, email: str, password: str, ip: str,
            now: datetime | None = None) -> Account | SignInRefused:
    """The account, or why not. Returned, not raised: the failure just recorded must be
    committed by the caller for the rate limit to count it."""
    now = now or wall_now()
    email = email.strip().lower()
    window_start = now - timedelta(minutes=settings.sign_in_window_minutes)
    if failures(session, window_start, email=email) >= settings.sign_in_max_failures_per_email \
            or ip_locked(session, settings, ip, now):
        return too_many_failures(settings)
    user = by_email(session, email)
    dummy = _hasher()[1]
    if not verify_password(user.password_hash if user and user.password_hash else dummy, password) \
            or user is None or user.password_hash is None or not user.is_active:
        record_failure(session, settings, email, ip, now)
        return SignInRefused(N_("The e-mail address or password is not right."))
    if _hasher()[0].check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    forget_failures(session, email)
    return account_of(user)


def too_many_failures(settings: Settings) -> SignInRefused:
    return SignInRefused(N_("Too many failed attempts. Wait {minutes} minutes and try again."),
                         retry_minutes=settings.sign_in_window_minutes)


def failures(session: Session, since: datetime, *, email: str | None = None,
             ip: str | None = None) -> int:
    """Failed password checks since ``since`` for an address or from a client."""
    where = SignInAttempt.email == email if email is not None else SignInAttempt.ip == ip
    return session.scalar(select(func.count()).select_from(SignInAttempt)
                          .where(where, SignInAttempt.at >= since)) or 0


def ip_locked(session: Session, settings: Settings, ip: str, now: datetime) -> bool:
    window_start = now - timedelta(minutes=settings.sign_in_window_minutes)
    return failures(session, window_start, ip=ip) >= settings.sign_in_max_failures_per_ip


def record_failure(session: Session, settings: Settings, email: str, ip: str,
                   now: datetime) -> None:
    """One wrong password for ``email`` from ``ip``: a sign-in's, or a sign-up's confirmation's
    (certflow.services.sign_ups), counted by the same limit. The caller must commit it."""
    session.add(SignInAttempt(email=email[:200], ip=ip[:64], at=now))
    # Attempts older than the window count for nothing: prune them as we go.
    window_start = now - timedelta(minutes=settings.sign_in_window_minutes)
    session.execute(delete(SignInAttempt).where(SignInAttempt.at < window_start))
    session.flush()


def forget_failures(session: Session, email: str) -> None:
    """The right password was given: earlier failures for the address count no more."""
    session.execute(delete(SignInAttempt).where(SignInAttempt.email == email))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` is the one ``password_hash`` was made of (one argon2 run); a
    malformed hash is a no, not an error."""
    try:
        return _hasher()[0].verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# -- mail that anyone can ask for ------------------------------------------------------------

class TooManyMails(CertflowError):
    """An address, or a client, asked for more mail than ``mail_requests_per_*`` allow in the
    window (429; ``message`` is a translatable ``Message``)."""

    status = 429

    def __init__(self, retry_minutes: int) -> None:
        super().__init__(Message(N_(
            "This was asked for several times in a short while, so no further e-mail is sent "
            "for now. Look in your spam folder, or wait %(minutes)s minutes and try again."),
            minutes=retry_minutes), field="email")
        self.retry_minutes = retry_minutes


def mail_request(session: Session, settings: Settings, kind: str, email: str, ip: str,
                 now: datetime | None = None) -> TooManyMails | None:
    """Count one request of ``kind`` for mail to ``email`` from ``ip``, or say why not (then
    nothing is counted and nothing should be mailed). Called before looking at whether the
    address has an account, and alike for every address: the limit gives nothing away. Only
    hashes are kept, and only for the window."""
    now = now or wall_now()
    window_start = now - timedelta(minutes=settings.mail_request_window_minutes)
    email_hash, ip_hash = digest(email.strip().lower()), digest(ip)
    session.execute(delete(MailRequest).where(MailRequest.at < window_start))

    def count(*where: Any) -> int:
        return session.scalar(select(func.count()).select_from(MailRequest)
                              .where(*where, MailRequest.at >= window_start)) or 0

    if count(MailRequest.kind == kind, MailRequest.email_hash == email_hash) >= \
            settings.mail_requests_per_address or \
            count(MailRequest.ip_hash == ip_hash) >= settings.mail_requests_per_ip:
        return TooManyMails(settings.mail_request_window_minutes)
    session.add(MailRequest(kind=kind, email_hash=email_hash, ip_hash=ip_hash, at=now))
    session.flush()
    return None


# -- browser sessions ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BrowserSession:
    account: Account
    csrf_token: str


def start_session(session: Session, settings: Settings, username: str, ip: str,
                  now: datetime | None = None) -> tuple[str, str]:
    """A new session for a signed-in person; returns (cookie value, CSRF token)."""
    now = now or wall_now()
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(WebSession(
        id_hash=digest(cookie), username=username, csrf_token=csrf, created_at=now,
        last_seen_at=now, expires_at=_expiry(settings, now, now), ip=ip[:64],
    ))
    # Old, expired rows go when someone signs in: no sweeper needed. So do expired sign-ups
    # (certflow.services.sign_ups): personal data of people who never confirmed them; and
    # expired e-mail address changes (certflow.services.email_changes).
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.execute(delete(PendingSignUp).where(PendingSignUp.expires_at <= now))
    session.execute(delete(EmailChange).where(EmailChange.expires_at <= now))
    session.flush()
    return cookie, csrf


def _expiry(settings: Settings, created: datetime, seen: datetime) -> datetime:
    return min(seen + timedelta(minutes=settings.session_idle_minutes),
               created + timedelta(hours=settings.session_max_hours))


_SESSION_AND_USER = (select(WebSession, User).join(User, User.username == WebSession.username)
                     .where(WebSession.id_hash == bindparam("id_hash")))


def resume_session(session: Session, settings: Settings, cookie: str | None,
                   now: datetime | None = None) -> BrowserSession | None:
    """The session behind a cookie, or None when it is unknown, expired or its account is
    deactivated. Extends the idle expiry (written at most once a minute)."""
    if not cookie:
        return None
    now = now or wall_now()
    found = session.execute(_SESSION_AND_USER, {"id_hash": digest(cookie)}).first()  # every page: one read
    if found is None:
        return None
    row, user = found._tuple()
    if row.expires_at <= now or not user.is_active:
        return None
    if now - row.last_seen_at > timedelta(minutes=1):
        row.last_seen_at = now
        row.expires_at = _expiry(settings, row.created_at, now)
    return BrowserSession(account_of(user), row.csrf_token)


def end_session(session: Session, cookie: str | None) -> None:
    if cookie:
        session.execute(delete(WebSession).where(WebSession.id_hash == digest(cookie)))


def expire_sessions(session: Session, username: str) -> int:
    """End every browser session of a person (deactivation, tests of expiry)."""
    result = session.execute(delete(WebSession).where(WebSession.username == username))
    assert isinstance(result, CursorResult)  # a DELETE's; Session.execute is typed as any Result
    return result.rowcount


# -- API tokens ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenInfo:
    id: int
    username: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def create_token(session: Session, username: str, name: str = "",
                 valid_for: timedelta | None = None, now: datetime | None = None,
                 token: str | None = None) -> tuple[str, TokenInfo]:
    """A new API token; the token itself is returned this once."""
    now = now or wall_now()
    if session.get(User, username) is None:
        raise NotFound(f"no user {username!r}")
    token = token or secrets.token_urlsafe(24)
    row = ApiToken(username=username, token_hash=digest(token), name=name[:100], created_at=now,
                   expires_at=now + valid_for if valid_for else None)
    session.add(row)
    session.flush()
    return token, _token_info(row)


def revoke_token(session: Session, token_id: int, now: datetime | None = None) -> TokenInfo:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no API token #{token_id}")
    if row.revoked_at is None:
        row.revoked_at = now or wall_now()
    session.flush()
    return _token_info(row)


def list_tokens(session: Session, username: str | None = None) -> list[TokenInfo]:
    stmt = select(ApiToken).order_by(ApiToken.id)
    if username:
        stmt = stmt.where(ApiToken.username == username)
    return [_token_info(row) for row in session.scalars(stmt)]


def _token_info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.username, row.name, row.created_at, row.expires_at,
                     row.revoked_at, row.last_used_at)


def authenticate(session: Session, token: str | None, now: datetime | None = None) -> Account:
    """The person behind an API token (``Authorization: Bearer``)."""
    if not token:
        raise Forbidden("missing API token (Authorization: Bearer <token>)")
    now = now or wall_now()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token)))
    if row is None:
        raise Forbidden("unknown API token")
    if row.revoked_at is not None:
        raise Forbidden("this API token was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Forbidden("this API token has expired; create a new one (certflow token create)")
    user = session.get(User, row.username)
    if user is None or not user.is_active:
        raise Forbidden("this account is deactivated")
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
    return account_of(user)


# -- password reset ----------------------------------------------------------------------------

def request_reset(session: Session, settings: Settings, email: str,
                  now: datetime | None = None) -> tuple[Account, str] | None:
    """A single-use reset token for the account with this e-mail address, or None when there
    is no such (active) account; the caller says the same thing either way."""
    now = now or wall_now()
    user = by_email(session, email)
    if user is None or not user.is_active:
        return None
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(token_hash=digest(token), username=user.username, created_at=now,
                              expires_at=now + timedelta(minutes=settings.password_reset_minutes)))
    session.flush()
    return account_of(user), token


def reset_account(session: Session, token: str, now: datetime | None = None) -> Account | None:
    """Whose reset link this is, if it is still usable (unused, unexpired)."""
    row = _usable_reset(session, token, now or wall_now())
    return account_of(session.get(User, row.username)) if row else None  # type: ignore[arg-type]


def complete_reset(session: Session, token: str, password: str,
                   now: datetime | None = None) -> Account:
    """Set the new password and use up the link (and every other open link of the account)."""
    now = now or wall_now()
    row = _usable_reset(session, token, now, lock=True)
    if row is None:
        raise Forbidden(N_("This link has expired or was used already. Ask for a new one."))
    set_password(session, row.username, password)
    for other in session.scalars(select(PasswordReset).where(
            PasswordReset.username == row.username, PasswordReset.used_at.is_(None))):
        other.used_at = now
    session.flush()
    return account_of(session.get(User, row.username))  # type: ignore[arg-type]


def _usable_reset(session: Session, token: str, now: datetime,
                  lock: bool = False) -> PasswordReset | None:
    """``lock``: held until commit, so of two uses at once (a double click on the reset form,
    the link open in two tabs) the second waits and finds the link used (unlocked, both read
    it unused and both set a password)."""
    row = session.get(PasswordReset, digest(token), with_for_update=lock, populate_existing=lock)
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def send_reset_mail(session: Session, settings: Settings, account: Account, link: str,
                    now: datetime | None = None) -> None:
    """Mail the reset link through the e-mail machinery (template accounts/password_reset),
    once per link: the idempotency key is the link's hash."""
    now = now or wall_now()
    key = f"password-reset:{digest(link)}"
    send_email(HandlerContext(session=session, now=now, idempotency_key=key, settings=settings),
               SendEmail(recipient=account.username, template="accounts/password_reset",
                         context={"reset_url": link,
                                  "valid_minutes": settings.password_reset_minutes}))
