"""A person's own data in "Mijn CMI": the newsletter choice, and the export of everything
certflow keeps about them (GDPR art. 15/20: access and portability), as one JSON document.

"Everything" means: the account (without password hashes or tokens), every case started by
or about them with what they themselves entered, their documents (metadata and checksum; the
files download one by one), invoices with lines and payments, certificates, the Register entry
with its history, the emails sent to them, their saved inbox filters and task drafts, and a
new e-mail address they asked for that waits for its link. Not a sign-up waiting with their
address: that is someone's without an account, never theirs (an account getting an address
deletes those; certflow.services.accounts.drop_sign_ups). Other people's
verdicts about them stay out of the export as they stay out of the pages (issue 7 point 2);
the office answers a request for those separately.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from certflow.clock import CLOCK
from certflow.errors import NotFound
from certflow.services.viewer import Viewer
from certflow.store.accounts import EmailChange
from certflow.store.billing import Invoice, Payment
from certflow.store.communications import EmailMessage
from certflow.store.models import WITHOUT_STATE, AuditEvent, Instance, User
from certflow.store.register import Certificate, RegisterEntry, RegisterHistory
from certflow.store.workspace import Document, SavedFilter, TaskDraft
from certflow.i18n import Message, N_

# Account columns never exported: secrets, not personal data the person gave us.
SECRET_MARKERS = ("hash", "token", "secret", "password", "totp")


def set_newsletter(session: Session, viewer: Viewer, receive: bool) -> bool:
    _user(session, viewer.username).newsletter_opt_out = not receive
    return receive


def _user(session: Session, username: str) -> User:
    user = session.get(User, username)
    if user is None:
        raise NotFound(Message(N_("no account '%(user)s'"), user=username))
    return user


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns
            if c.key not in skip and not any(m in c.key for m in SECRET_MARKERS)}


def export(s: Session, viewer: Viewer) -> dict[str, Any]:
    """Everything kept about the viewer, JSON-ready (dates as ISO strings, money as strings)."""
    me = viewer.username
    account = _row(_user(s, me))
    cases = s.scalars(select(Instance).options(WITHOUT_STATE)
                      .where(or_(Instance.started_by == me, Instance.subject == me))
                      .order_by(Instance.created_at)).all()
    case_ids = [c.id for c in cases]
    mine = s.scalars(select(AuditEvent).where(AuditEvent.actor == me).order_by(AuditEvent.id)).all()
    invoices = s.scalars(select(Invoice).where(Invoice.customer_username == me).order_by(Invoice.id)).all()
    payments = s.scalars(select(Payment).where(Payment.invoice_id.in_([i.id for i in invoices]))).all()
    entry = s.scalar(select(RegisterEntry).where(RegisterEntry.holder == me))
    document = {
        "exported_at": CLOCK.now(),
        "account": account,
        "cases": [{
            **_row(c, skip=("state", "projected", "version", "serializer_version", "definition_id")),
            "my_entries": [_event(e) for e in mine if e.instance_id == c.id],
        } for c in cases],
        "my_actions_in_other_cases": [_event(e) for e in mine if e.instance_id not in case_ids],
        "documents": [_row(d) for d in s.scalars(
            select(Document).where(Document.owner == me).order_by(Document.created_at))],
        "invoices": [{**_row(i, skip=("pdf", "ubl_xml", "idempotency_key")),
                      "lines": [_row(ln) for ln in i.lines]} for i in invoices],
        "payments": [_row(p) for p in payments],
        "certificates": [_row(c, skip=("pdf", "idempotency_key")) for c in s.scalars(
            select(Certificate).where(Certificate.holder == me).order_by(Certificate.valid_from))],
        "register_entry": _row(entry) if entry else None,
        "register_history": [_row(h, skip=("idempotency_key",)) for h in s.scalars(
            select(RegisterHistory).where(RegisterHistory.entry_id == entry.id)
            .order_by(RegisterHistory.id))] if entry else [],
        "emails": [_row(m, skip=("idempotency_key", "body_html")) for m in s.scalars(
            select(EmailMessage).where(EmailMessage.recipient == me).order_by(EmailMessage.created_at))],
        "saved_filters": [_row(f) for f in s.scalars(select(SavedFilter).where(SavedFilter.owner == me))],
        "task_drafts": [_row(d) for d in s.scalars(select(TaskDraft).where(TaskDraft.username == me))],
        # A new address asked for on Mijn account, until its link is followed (without the
        # link's hash: SECRET_MARKERS).
        "email_changes": [_row(c) for c in s.scalars(select(EmailChange).where(
            EmailChange.username == me))],
    }
    return plain(document)


def _event(e: AuditEvent) -> dict[str, Any]:
    return {"at": e.at, "action": e.action, "element_id": e.element_id, "instance_id": e.instance_id,
            "detail": e.detail}


def plain(value: Any) -> Any:
    """Dates, datetimes and Decimals as strings, recursively: what json.dumps can write."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None
    return value


def export_json(session: Session, viewer: Viewer) -> bytes:
    return json.dumps(export(session, viewer), ensure_ascii=False, indent=2).encode()


def invoices(session: Session, viewer: Viewer) -> list[dict[str, Any]]:
    """My invoices and credit notes, newest first, with what they are for and their state
    (the files: certflow.services.billing.views.invoice_document)."""
    rows = session.scalars(select(Invoice).where(Invoice.customer_username == viewer.username)
                           .order_by(Invoice.issue_date.desc(), Invoice.id.desc())).all()
    return [{"number": i.number, "kind": i.kind, "status": i.status, "issue_date": i.issue_date,
             "due_date": i.due_date, "description": i.description, "reference": i.reference,
             "gross_total": i.gross_total, "payment_reference": i.payment_reference,
             # Made in bulk, it has none stored yet; the download renders them.
             "has_pdf": True, "has_ubl": True} for i in rows]
