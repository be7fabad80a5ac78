"""A person changing their own e-mail address on "Mijn account", confirmed from the new address.

The address is what a person signs in with and where certflow's mail and password resets
go. Set at once, it let any account take a stranger's address (blocking the stranger's sign-up,
and mailing them), and the page's "an account with this address exists" told anyone who has
an account. So:

- ``ask`` keeps the new address in ``email_changes`` with a random token (only its SHA-256
  stored; one change per account, a newer one replaces the older in one statement, so two at
  once leave one) and returns the token. The page answers the same whatever the address, and
  calls ``mail`` after its answer.
- ``mail``: the new address gets a link to ``/account/email/confirm/<token>``, working
  ``settings.email_change_confirm_hours``; an address that has an account gets no link but a
  notice to its owner (at most one a day, as a sign-up's warning); the old address is told
  that a change was asked for. The link's mail carries nothing the account's holder typed but
  the address (no name: the address may be a stranger's).
- ``confirm`` (the link's page, signed in as the account's owner, by a button: a link scanner
  that opens the link uses nothing up) sets the address through ``accounts.update``, which
  voids open reset links and deletes sign-ups waiting with the new address; unless the
  address got an account meanwhile, when nothing changes.

Staff (the office, an admin) change someone's address directly, on the person's page: that
takes effect at once, and ``tell_old_address`` then tells the old address, which no longer
gets the account's mail (a person whose address was changed behind their back, by a mistaken
or a deceived office, hears of it where they still read).

A pending change is the account holder's personal data: it is in their export
(certflow.services.my_data) and erased with them (certflow.services.privacy). Expired ones are
deleted by the next request, confirmation or sign-in (``prune``), so no sweeper is needed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from certflow.errors import Conflict
from certflow.registry import HandlerContext
from certflow.services import accounts
from certflow.services.access import digest, wall_now
from certflow.services.email import SendEmail, send_email, send_to_address
from certflow.settings import Settings
from certflow.store.accounts import EmailChange
from certflow.store.db import replace_row
from certflow.store.models import User

CONFIRM_PATH = "/account/email/confirm/"
KIND = "email-change"  # what access.mail_request counts


@dataclass(frozen=True)
class PendingChange:
    username: str
    new_email: str
    expires_at: datetime


def ask(session: Session, settings: Settings, username: str, new_email: str,
        now: datetime | None = None) -> str:
    """Keep ``new_email`` as ``username``'s change waiting for its link (replacing an earlier
    one); returns the token for ``mail``. Kept alike whoever has the address."""
    now = now or wall_now()
    prune(session, now)
    token = secrets.token_urlsafe(32)
    row = dict(token_hash=digest(token), username=username, new_email=new_email.strip().lower(),
               created_at=now, expires_at=now + timedelta(hours=settings.email_change_confirm_hours))
    # The earlier change is replaced (a double click on "Opslaan" leaves one: the newest link).
    replace_row(session, EmailChange, row, key="username")
    return token


def mail(session: Session, settings: Settings, token: str,
         now: datetime | None = None) -> Literal["link", "taken", "gone"]:
    """Mail what a change asked for (``ask``) needs, after the page's answer: the link to the
    new address, or the notice to its owner; and the notice to the old address. Returns which,
    for logs and tests; "gone" when the change was cancelled or replaced meanwhile."""
    now = now or wall_now()
    row = session.get(EmailChange, digest(token))
    user = session.get(User, row.username) if row is not None else None
    if row is None or user is None:
        return "gone"
    site = _site(settings)
    # To the address the account has now: its holder learns of a change they did not ask for.
    send_email(HandlerContext(session=session, now=now, settings=settings,
                              idempotency_key=f"email-change-asked:{row.token_hash}"),
               SendEmail(recipient=user.username, template="accounts/email_change_asked",
                         context={"new_email": row.new_email, "account_url": f"{site}/account"}))
    owner = accounts.by_email(session, row.new_email)
    if owner is not None and owner.username != user.username:
        _tell_owner(session, settings, owner, now)
        return "taken"
    # From the configured address, never a request's Host header (the token would go there).
    # Greeting no one by name, and with no name beside the address: the name is the account's,
    # typed by whoever holds it, and the address may be a stranger's (as a sign-up's mail).
    send_to_address(session, settings, now, address=row.new_email, name="",
                    language=user.language, template="accounts/email_change_confirm",
                    context={"confirm_url": site + CONFIRM_PATH + token,
                             "valid_hours": settings.email_change_confirm_hours})
    return "link"


def tell_old_address(session: Session, settings: Settings, username: str, old_email: str) -> None:
    """Staff set ``username``'s address directly: mail the old one (``old_email``) that it no
    longer gets the account's mail, and to which address it now goes. Sent after the change
    is saved; the old address has no account, so the mail is not kept (``send_to_address``)."""
    user = session.get(User, username)
    if user is None or accounts.is_erased(user) or user.email.lower() == old_email.lower():
        return
    send_to_address(session, settings, wall_now(), address=old_email, name=user.display_name,
                    language=user.language, template="accounts/email_changed_by_staff",
                    context={"new_email": user.email})


def _tell_owner(session: Session, settings: Settings, owner: User, now: datetime) -> None:
    """The address belongs to another account: no link (it could never be used), but its owner
    hears of it, at most once a day (a repeated request finds the day's message sent), with the
    ways into their own account. The one who asked is told nothing of this."""
    if not owner.is_active or accounts.is_erased(owner):
        return
    site = _site(settings)
    key = f"email-change-taken:{owner.username}:{now.date().isoformat()}"
    send_email(HandlerContext(session=session, now=now, idempotency_key=key, settings=settings),
               SendEmail(recipient=owner.username, template="accounts/email_change_taken",
                         context={"sign_in_url": f"{site}/sign-in",
                                  "reset_url": f"{site}/password/forgot"}))


def pending(session: Session, username: str, now: datetime | None = None) -> PendingChange | None:
    """The change ``username`` asked for that still waits for its link, if any."""
    row = session.scalar(select(EmailChange).where(EmailChange.username == username,
                                                   EmailChange.expires_at > (now or wall_now())))
    return PendingChange(row.username, row.new_email, row.expires_at) if row else None


def cancel(session: Session, username: str) -> None:
    """Drop the change ``username`` asked for: its link no longer works."""
    session.execute(delete(EmailChange).where(EmailChange.username == username))


def link(session: Session, token: str, now: datetime | None = None) -> PendingChange | None:
    """The change behind a link, if it is still usable (asked for, unexpired, not replaced)."""
    row = session.get(EmailChange, digest(token))
    if row is None or row.expires_at <= (now or wall_now()):
        return None
    return PendingChange(row.username, row.new_email, row.expires_at)


Outcome = Literal["changed", "taken", "unusable", "not_yours"]


def confirm(session: Session, username: str, token: str, now: datetime | None = None) -> Outcome:
    """Set the new address of the link's change, for its owner ``username`` (signed in), and
    use the link up. "taken": the address got an account meanwhile, and nothing changed (the
    change is used up: it can never be confirmed); "not_yours": the link is another account's
    (it stays usable for its owner); "unusable": unknown, expired, used, cancelled or replaced."""
    now = now or wall_now()
    prune(session, now)
    change = link(session, token, now)
    if change is None:
        return "unusable"
    if change.username != username:
        return "not_yours"
    # Deleted first: of two confirmations at once, the second deletes nothing (on PostgreSQL
    # it waits for the first to commit) and so changes nothing.
    gone = session.execute(delete(EmailChange).where(EmailChange.token_hash == digest(token)))
    assert isinstance(gone, CursorResult)  # a DELETE's; Session.execute is typed as any Result
    if gone.rowcount != 1:
        return "unusable"
    try:
        # Refuses an address another account has (read, or met at the unique index).
        accounts.update(session, username, {"email": change.new_email})
    except Conflict:
        return "taken"
    return "changed"


def prune(session: Session, now: datetime) -> int:
    """Delete the changes whose link has expired; returns how many."""
    result = session.execute(delete(EmailChange).where(EmailChange.expires_at <= now))
    assert isinstance(result, CursorResult)
    return result.rowcount


def _site(settings: Settings) -> str:
    return settings.public_url.rstrip("/")
