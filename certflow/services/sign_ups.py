"""Candidates registering themselves, confirmed by mail, so that the sign-up page tells
nobody whether an address has an account.

The page gives every valid sign-up the same answer ("check your e-mail") and calls ``start``
after it; what happens then only the address's owner sees, in their mail:

- An address without an account: the sign-up waits in ``pending_sign_ups`` (the cleaned data
  and the password's argon2 hash), and a link to ``/sign-up/confirm/<token>`` is mailed. The
  token is random and only its SHA-256 is kept, as with a password reset. The newest sign-up
  of an address is the one that counts: it replaces any earlier one, in one statement, so two
  at once leave one (the second link).
- An address with an account: its owner is mailed that someone tried to register with it,
  with links to sign in and to reset the password; nothing is stored. At most one such mail a
  day per account, so repeated tries do not flood the owner.

Neither mail carries anything the visitor typed but the address: the link's mail greets no one
by name (the name is whatever was typed, and the address may be a stranger's), the warning
greets the owner by the account's own name.

Following the link only shows a page (``usable``); the account is made by ``confirm``, when
the password chosen at sign-up is typed there. The link alone is not enough, because whoever
signs up chooses the address: with someone else's address and a password of their own, a
link that made the account would hand them the account its owner then used, and a link sent
to someone signed in would sign them into the sender's account. And a mail scanner that
fetches every link must not use it up. Wrong passwords count against the client's sign-in
limit (certflow.services.access) and against the link itself: at the per-address limit
(``sign_in_max_failures_per_email``) of wrong ones over the link's whole life, not per window,
the sign-up is dropped, and its person signs up again.

A pending sign-up is personal data of someone without an account: it is deleted when
confirmed, and once expired (``settings.sign_up_confirm_hours``) by the next sign-up,
confirmation or sign-in (``prune``), so no sweeper is needed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.orm import Session

from certflow.errors import Conflict
from certflow.registry import HandlerContext
from certflow.services import access, accounts
from certflow.services.access import digest, wall_now
from certflow.services.email import SendEmail, send_email, send_to_address
from certflow.settings import Settings
from certflow.store.accounts import PendingSignUp
from certflow.store.db import replace_row
from certflow.store.models import User

CONFIRM_PATH = "/sign-up/confirm/"


@dataclass(frozen=True)
class SignUp:
    """What the sign-up form gave, cleaned (``accounts.clean_person``), with the password's
    hash: the password itself goes no further than the page."""

    email: str
    display_name: str
    language: str
    address: dict[str, str]
    date_of_birth: date | None
    password_hash: str


def start(session: Session, settings: Settings, sign_up: SignUp,
          now: datetime | None = None) -> Literal["pending", "taken"]:
    """Keep the sign-up and mail its link, or tell the address's owner. Returns which, for
    logs and tests: the visitor is never told."""
    now = now or wall_now()
    prune(session, now)
    owner = accounts.by_email(session, sign_up.email)
    if owner is not None:
        _warn_owner(session, settings, owner, now)
        return "taken"
    token = secrets.token_urlsafe(32)
    row = dict(token_hash=digest(token), email=sign_up.email, display_name=sign_up.display_name,
               language=sign_up.language, address=dict(sign_up.address),
               date_of_birth=sign_up.date_of_birth, password_hash=sign_up.password_hash,
               created_at=now, expires_at=now + timedelta(hours=settings.sign_up_confirm_hours),
               failed_attempts=0)
    # An earlier sign-up of the address is replaced (two at once leave one: the newest link).
    replace_row(session, PendingSignUp, row, key="email")
    # Mailed before the row is committed: a mail that fails leaves nothing behind. From the
    # configured address, never a request's Host header (the token would go to that server).
    # Greeting no one by name, and with no name beside the address: whoever signs up types
    # the name, and the address may be a stranger's ("Dear Your payment failed, pay at ...").
    send_to_address(session, settings, now, address=sign_up.email, name="",
                    language=sign_up.language, template="accounts/sign_up_confirm",
                    context={"confirm_url": _site(settings) + CONFIRM_PATH + token,
                             "valid_hours": settings.sign_up_confirm_hours})
    return "pending"


def _warn_owner(session: Session, settings: Settings, owner: User, now: datetime) -> None:
    if not owner.is_active or accounts.is_erased(owner):
        return  # it cannot sign in or reset its password: nothing to point its owner to
    # One a day per account: a repeated try finds the day's message sent (email._queue).
    key = f"sign-up-taken:{owner.username}:{now.date().isoformat()}"
    site = _site(settings)
    send_email(HandlerContext(session=session, now=now, idempotency_key=key, settings=settings),
               SendEmail(recipient=owner.username, template="accounts/sign_up_taken",
                         context={"sign_in_url": f"{site}/sign-in",
                                  "reset_url": f"{site}/password/forgot"}))


@dataclass(frozen=True)
class NotConfirmed:
    """Why ``confirm`` made no account: ``gone`` (the link is unknown, expired or used, or its
    address got an account meanwhile), ``wrong`` (not the sign-up's password; nothing used
    up), ``dropped`` (that was one wrong password too many: the sign-up is deleted) or
    ``wait`` (this client gave too many wrong passwords lately; ``retry_minutes``)."""

    reason: Literal["gone", "wrong", "dropped", "wait"]
    retry_minutes: int = 0


def usable(session: Session, token: str, now: datetime | None = None) -> bool:
    """Whether the link can still be confirmed (its page shows the form). Uses nothing up."""
    now = now or wall_now()
    prune(session, now)
    row = session.get(PendingSignUp, digest(token))
    return row is not None and accounts.by_email(session, row.email) is None


def confirm(session: Session, settings: Settings, token: str, password: str, ip: str,
            now: datetime | None = None) -> accounts.Account | NotConfirmed:
    """Create the account of a pending sign-up, exactly as the sign-up page used to, when
    ``password`` is the one chosen at sign-up, and use the sign-up up. Returned, not raised:
    a wrong password just counted must be committed by the caller."""
    now = now or wall_now()
    prune(session, now)
    row = session.get(PendingSignUp, digest(token))
    if row is None:
        return NotConfirmed("gone")
    if access.ip_locked(session, settings, ip, now):
        return NotConfirmed("wait", settings.sign_in_window_minutes)
    email = row.email
    if not access.verify_password(row.password_hash, password):
        access.record_failure(session, settings, email, ip, now)  # the client's limit
        # Counted over the link's whole life, not per sign-in window (that allowed 5 guesses
        # every 15 minutes for a day); one statement, so two guesses at once both count. A new
        # sign-up of the address starts afresh.
        failed = session.scalar(update(PendingSignUp)
                                .where(PendingSignUp.token_hash == digest(token))
                                .values(failed_attempts=PendingSignUp.failed_attempts + 1)
                                .returning(PendingSignUp.failed_attempts))
        if failed is not None and failed < settings.sign_in_max_failures_per_email:
            return NotConfirmed("wrong")
        session.execute(delete(PendingSignUp).where(PendingSignUp.token_hash == digest(token)))
        return NotConfirmed("dropped")
    name, language, password_hash = row.display_name, row.language, row.password_hash
    address, born = dict(row.address), row.date_of_birth
    # Deleted before the account is made: of two confirmations at once, the second deletes
    # nothing (on PostgreSQL it waits for the first to commit) and so creates nothing.
    gone = session.execute(delete(PendingSignUp).where(PendingSignUp.token_hash == digest(token)))
    assert isinstance(gone, CursorResult)  # a DELETE's; Session.execute is typed as any Result
    if gone.rowcount != 1 or accounts.by_email(session, email) is not None:
        return NotConfirmed("gone")
    access.forget_failures(session, email)
    for attempt in range(USERNAME_TRIES):
        try:
            return accounts.create(
                session, accounts.free_username(session, email), name, ["candidate"], email=email,
                is_staff=False, language=language, address=address, date_of_birth=born,
                password_hash=password_hash, now=now)
        except Conflict as exc:
            # The username was free when picked and another confirmation took it meanwhile
            # (ann@example.nl and ann@elders.nl at the same moment): pick again, as a moment
            # later would have. The person never chose it; refusing them for it was wrong.
            fields = exc.details.get("fields")
            if not isinstance(fields, dict) or "username" not in fields or attempt == USERNAME_TRIES - 1:
                raise
    raise AssertionError("unreachable")


USERNAME_TRIES = 3


def prune(session: Session, now: datetime) -> int:
    """Delete the sign-ups whose link has expired; returns how many."""
    result = session.execute(delete(PendingSignUp).where(PendingSignUp.expires_at <= now))
    assert isinstance(result, CursorResult)
    return result.rowcount


def _site(settings: Settings) -> str:
    return settings.public_url.rstrip("/")
