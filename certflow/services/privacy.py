"""The right to erasure (GDPR art. 17) as the office carries it out.

A person asks in Mijn CMI; that starts the ``data_erasure`` process, whose office task decides;
on approval its service task runs ``anonymise``. What happens then:

- Invoices, their lines and payments stay untouched: Dutch tax law (AWR art. 52) requires
  keeping them 7 years, and an invoice keeps its own copy of the customer's name and address.
- Certificates and the Register history stay: they are the certifier's record of a decision.
- Finished cases about the person are deleted with their audit trail and documents; cases
  still running are kept (and named in the result, for the office to finish or cancel).
- Emails sent to the person keep only their template name and date; a mail still queued for
  them is not sent (certflow.services.email refuses an erased account).
- Saved filters, task drafts and a new e-mail address waiting for its link are deleted. (A
  sign-up waiting with the person's address is not theirs but someone's without an account;
  there is none: an account getting an address deletes those.)
- The account keeps its username (invoices and certificates refer to it) but loses its name,
  email, address and anything else personal, and can no longer sign in.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from certflow.services import access, accounts
from certflow.store.accounts import EmailChange
from certflow.store.billing import Invoice
from certflow.store.communications import EmailMessage
from certflow.store.models import AuditEvent, Instance, User
from certflow.store.workspace import Document, SavedFilter, TaskDraft
from certflow.i18n import Message, N_

RETENTION_YEARS = 7
ANONYMOUS = "Geanonimiseerd"
# Cases that run alongside a person for years and do not stand in the way of erasure.
STANDING = ("certificate_lifecycle", "data_erasure")
# Personal columns an account may have besides the ones named in anonymise (set when present).
OPTIONAL_PERSONAL = {"phone": "", "gender": None, "date_of_birth": None, "first_name": ANONYMOUS,
                     "surname": "", "last_name": "", "password_hash": "!"}


def erasure_refusal(session: Session, username: str) -> str | None:
    """Why erasure cannot be asked for now, or None. A running application or order still
    needs the data; the person finishes or withdraws it first."""
    running = session.scalars(select(Instance.business_key).where(
        or_(Instance.subject == username, Instance.started_by == username),
        Instance.status == "running", Instance.process_id.not_in(STANDING))).all()
    if running:
        return Message(N_("You still have a case in progress (%(cases)s); erasure is possible once "
                          "it is finished. Ask the office to end it early if you want"),
                       cases=", ".join(sorted(running)[:5]))
    return None


def retained_until(issue_dates: list[date]) -> date | None:
    """Kept for 7 years after the end of the year of the last invoice (the fiscal year)."""
    return date(max(issue_dates).year + RETENTION_YEARS, 12, 31) if issue_dates else None


def anonymise(session: Session, username: str, now: datetime) -> dict[str, Any]:
    user = session.get(User, username)
    if user is None:
        raise LookupError(f"no account {username!r}")
    about = or_(Instance.subject == username, Instance.started_by == username)
    finished = session.scalars(select(Instance.id).where(about, Instance.status != "running")).all()
    running = session.scalars(select(Instance.business_key).where(about, Instance.status == "running")).all()
    documents = session.scalar(select(func.count()).select_from(Document).where(
        Document.instance_id.in_(finished))) or 0
    if finished:
        session.execute(delete(Document).where(Document.instance_id.in_(finished)))
        session.execute(delete(AuditEvent).where(AuditEvent.instance_id.in_(finished)))
        session.execute(delete(Instance).where(Instance.id.in_(finished)))
    for message in session.scalars(select(EmailMessage).where(EmailMessage.recipient == username)):
        message.to_address, message.subject = "", f"({message.template})"
        message.body_text = message.body_html = ""
    session.execute(delete(SavedFilter).where(SavedFilter.owner == username))
    session.execute(delete(TaskDraft).where(TaskDraft.username == username))
    session.execute(delete(EmailChange).where(EmailChange.username == username))
    # Failed sign-ins keep the address and the client's IP for the rate limit's window: not
    # after the person is gone.
    access.forget_failures(session, user.email)
    _anonymise_account(user)
    access.expire_sessions(session, username)
    for token in access.list_tokens(session, username):
        access.revoke_token(session, token.id, now)
    issued = session.scalars(select(Invoice.issue_date).where(Invoice.customer_username == username)).all()
    until = retained_until(list(issued))
    return {"anonymised": username, "at": now.isoformat(), "cases_removed": len(finished),
            "documents_removed": documents, "cases_still_running": sorted(running),
            "invoices_kept": len(issued), "invoices_kept_until": until.isoformat() if until else None}


def _anonymise_account(user: User) -> None:
    tag = hashlib.sha256(f"{user.username}:{secrets.token_hex(8)}".encode()).hexdigest()[:12]
    user.display_name = ANONYMOUS
    user.email = accounts.erased_address(tag)
    user.address = {}
    user.newsletter_opt_out = True
    user.date_of_birth = None
    # No way in any more: no password, no sessions, no API tokens (revoked by the caller).
    user.password_hash, user.is_active = None, False
    for column, value in OPTIONAL_PERSONAL.items():
        if hasattr(user, column):
            setattr(user, column, value)
