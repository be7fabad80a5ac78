"""The public Register Loopbaanprofessional: one entry per professional, kept in step with the
status of their current certificate, and an append-only history of every change to it.

Used by the operators (handlers/register.py), each idempotent by key: a replay returns the
first result and changes nothing
---------------------------------------------------------------------------------------------
``register/enter``                    ``{holder, certificate_id}``  first entry, or re-entry
                                      after a lapse or withdrawal
``register/extend``                   ``{holder, certificate_id}``  recertified: the entry
                                      moves to the new certificate and its valid_until
``register/recertification_started``  ``{holder}``
``register/lapse``                    ``{holder}``                  expired unrecertified
``register/suspend``                  ``{holder, reason}``
``register/withdraw``                 ``{holder, reason}``
``register/set_relations``            ``{holder, mentor?, supervisor?}`` who guided them (kept
                                      to refuse conflicted assessors); no history row

Every result: ``{entry_id, history_id, holder, action, certificate_id, register_number,
status, valid_until}`` (valid_until ISO), describing the entry right after that change.
A change the entry's status does not allow (lapsing a withdrawn entry, extending one that
is not in the register) is a PermanentError: staff must look, not a retry.

``public_register(session, query)`` is what anyone may see: name, register number,
certificate status and valid_until, and nothing else (GDPR).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certflow.registry import HandlerContext, PermanentError
from certflow.store.base import new_id
from certflow.store.models import User
from certflow.store.register import Certificate, RegisterEntry, RegisterHistory
from certflow.i18n import Message, N_

# action -> (status afterwards, statuses it may start from)
TRANSITIONS: dict[str, tuple[str, frozenset[str]]] = {
    "recertification_started": ("recertification_running", frozenset({"valid"})),
    "lapsed": ("lapsed", frozenset({"valid", "recertification_running"})),
    "suspended": ("suspended", frozenset({"valid", "recertification_running"})),
    "withdrawn": ("withdrawn", frozenset({"valid", "recertification_running", "suspended",
                                          "lapsed"})),
}
# A lapsed or withdrawn professional comes back only through a new first certification.
REENTER_FROM = frozenset({"lapsed", "withdrawn"})
EXTEND_FROM = frozenset({"valid", "recertification_running"})


class WithCertificate(BaseModel):
    holder: str = Field(min_length=1)
    certificate_id: str = Field(min_length=1)


class HolderOnly(BaseModel):
    holder: str = Field(min_length=1)


class WithReason(BaseModel):
    holder: str = Field(min_length=1)
    reason: str = Field(min_length=1)


def enter(ctx: HandlerContext, data: WithCertificate) -> dict[str, Any]:
    return _record(ctx, "entered", data.holder, certificate_id=data.certificate_id)


def extend(ctx: HandlerContext, data: WithCertificate) -> dict[str, Any]:
    return _record(ctx, "extended", data.holder, certificate_id=data.certificate_id)


def recertification_started(ctx: HandlerContext, data: HolderOnly) -> dict[str, Any]:
    return _record(ctx, "recertification_started", data.holder)


def lapse(ctx: HandlerContext, data: HolderOnly) -> dict[str, Any]:
    return _record(ctx, "lapsed", data.holder)


def suspend(ctx: HandlerContext, data: WithReason) -> dict[str, Any]:
    return _record(ctx, "suspended", data.holder, reason=data.reason)


def withdraw(ctx: HandlerContext, data: WithReason) -> dict[str, Any]:
    return _record(ctx, "withdrawn", data.holder, reason=data.reason)


class Relations(BaseModel):
    holder: str = Field(min_length=1)
    mentor: str | None = None
    supervisor: str | None = None


def set_relations(ctx: HandlerContext, data: Relations) -> dict[str, Any]:
    """Setting the same values again changes nothing, so a replay is harmless."""
    entry = ctx.session.scalar(select(RegisterEntry).where(RegisterEntry.holder == data.holder).with_for_update())
    if entry is None:
        raise PermanentError(f"{data.holder} has no register entry")
    if data.mentor is not None:
        entry.mentor = data.mentor
    if data.supervisor is not None:
        entry.supervisor = data.supervisor
    return {"holder": entry.holder, "mentor": entry.mentor, "supervisor": entry.supervisor}


def assessor_problems(session: Session, holder: str, assessors: list[str]) -> list[str]:
    """Why these people may not assess ``holder`` together (empty when they may): each must be
    a known member of the assessor group, and none conflicted (``relations_conflicts``). The
    one rule for choosing assessors and for reassigning an assessor's task later."""
    problems = []
    for name in assessors:
        user = session.get(User, name)
        if user is None:
            problems.append(Message(N_("%(user)s is not a known user"), user=name))
        elif "assessor" not in (user.groups or []):
            problems.append(Message(N_("%(user)s is not in the assessor group"), user=name))
    return problems + relations_conflicts(session, holder, assessors)


def relations_conflicts(session: Session, holder: str, assessors: list[str]) -> list[str]:
    """Why each of these assessors may not assess this holder (empty when all may)."""
    entry = session.scalar(select(RegisterEntry).where(RegisterEntry.holder == holder))
    problems: list[str] = []
    for name in assessors:
        if name == holder:
            problems.append(Message(N_("%(user)s cannot assess themselves"), user=name))
        elif entry is not None and name == entry.mentor:
            problems.append(Message(N_("%(user)s was %(holder)s's mentor"), user=name, holder=holder))
        elif entry is not None and name == entry.supervisor:
            problems.append(Message(N_("%(user)s is %(holder)s's supervisor"), user=name, holder=holder))
    if len(set(assessors)) < len(assessors):
        problems.append(Message(N_("the assessors must be different people")))
    return problems


def _record(ctx: HandlerContext, action: str, holder: str, *, certificate_id: str | None = None,
            reason: str | None = None) -> dict[str, Any]:
    """Apply one change and append its history row, all or nothing.

    The entry is locked first, so a duplicate delivery of the same job waits for the first
    one to commit and then finds its history row; the unique key on the history row settles
    the remaining race (two first entries), inside a savepoint that undoes the loser's change.
    """
    session = ctx.session
    entry = session.scalar(
        select(RegisterEntry).where(RegisterEntry.holder == holder).with_for_update()
    )
    done = _by_key(session, ctx.idempotency_key)
    if done is None:
        try:
            with session.begin_nested():
                done = _apply(ctx, action, holder, entry, certificate_id, reason)
        except IntegrityError:
            done = _by_key(session, ctx.idempotency_key)
            if done is None:
                raise
    return _result(done, holder)


def _apply(ctx: HandlerContext, action: str, holder: str, entry: RegisterEntry | None,
           certificate_id: str | None, reason: str | None) -> RegisterHistory:
    old_status = entry.status if entry else None
    old_until = entry.valid_until if entry else None
    if certificate_id is not None:
        cert = _certificate_of(ctx.session, holder, certificate_id)
        entry = _point_at(ctx, action, holder, entry, cert)
    else:
        entry = _transition(ctx, action, holder, entry)
    history = RegisterHistory(
        entry_id=entry.id, action=action, certificate_id=entry.certificate_id,
        register_number=entry.register_number, old_status=old_status, new_status=entry.status,
        old_valid_until=old_until, new_valid_until=entry.valid_until, reason=reason,
        at=ctx.now, idempotency_key=ctx.idempotency_key,
    )
    ctx.session.add(history)
    ctx.session.flush()
    return history


def _certificate_of(session: Session, holder: str, certificate_id: str) -> Certificate:
    cert = session.get(Certificate, certificate_id)
    if cert is None:
        raise PermanentError(f"register: no certificate {certificate_id!r}")
    if cert.holder != holder:
        raise PermanentError(
            f"register: certificate {cert.register_number} belongs to {cert.holder!r}, "
            f"not {holder!r}"
        )
    if cert.status != "valid":
        raise PermanentError(f"register: certificate {cert.register_number} is {cert.status}")
    return cert


def _point_at(ctx: HandlerContext, action: str, holder: str, entry: RegisterEntry | None,
              cert: Certificate) -> RegisterEntry:
    """Enter or extend: the entry shows ``cert`` from now on."""
    if action == "entered":
        if entry is not None and entry.status not in REENTER_FROM:
            raise PermanentError(
                f"register/enter: {holder!r} is already in the register ({entry.status}); "
                "a recertification uses register/extend"
            )
        if entry is None:
            entry = RegisterEntry(id=new_id(), holder=holder)
            ctx.session.add(entry)
    else:
        if entry is None or entry.status not in EXTEND_FROM:
            state = entry.status if entry else "not in the register"
            raise PermanentError(
                f"register/extend: {holder!r} is {state}; only a valid entry can be extended "
                "(after a lapse, a new certification uses register/enter)"
            )
        if cert.valid_until <= entry.valid_until:
            raise PermanentError(
                f"register/extend: certificate {cert.register_number} runs to "
                f"{cert.valid_until}, not beyond the current {entry.valid_until}"
            )
        previous = ctx.session.get(Certificate, entry.certificate_id)
        if previous is not None and previous.status == "recertification_running":
            # The recertification is done; the old certificate simply runs out its term.
            previous.status = "valid"
    entry.certificate_id, entry.register_number = cert.id, cert.register_number
    entry.status, entry.valid_until, entry.updated_at = "valid", cert.valid_until, ctx.now
    return entry


def _transition(ctx: HandlerContext, action: str, holder: str,
                entry: RegisterEntry | None) -> RegisterEntry:
    """Change the status of the entry and of its current certificate together."""
    new_status, allowed = TRANSITIONS[action]
    if entry is None:
        raise PermanentError(f"register: {holder!r} is not in the register; cannot mark {action}")
    if entry.status not in allowed:
        raise PermanentError(
            f"register: {holder!r} is {entry.status}; cannot mark {action} "
            f"(allowed from: {', '.join(sorted(allowed))})"
        )
    entry.status, entry.updated_at = new_status, ctx.now
    cert = ctx.session.get(Certificate, entry.certificate_id)
    if cert is not None:
        cert.status = new_status
    return entry


def _by_key(session: Session, key: str) -> RegisterHistory | None:
    return session.scalar(select(RegisterHistory).where(RegisterHistory.idempotency_key == key))


def _result(history: RegisterHistory, holder: str) -> dict[str, Any]:
    return {
        "entry_id": history.entry_id, "history_id": history.id, "holder": holder,
        "action": history.action, "certificate_id": history.certificate_id,
        "register_number": history.register_number, "status": history.new_status,
        "valid_until": history.new_valid_until.isoformat(),
    }


def public_register(session: Session, query: str | None = None, limit: int | None = None,
                    offset: int = 0) -> list[dict[str, str | None]]:
    """The public view: name, register number, status, level, specialisation, valid_until;
    searched on name or number, by name; ``limit`` rows from ``offset`` (the database stops
    there: a search for one letter must not fetch the whole register for anyone who asks).

    Selects exactly those columns, so nothing else about a person can leak through here.
    """
    stmt = (
        select(User.display_name, RegisterEntry.register_number, RegisterEntry.status,
               Certificate.level, Certificate.specialisation, RegisterEntry.valid_until)
        .join(User, User.username == RegisterEntry.holder)
        .join(Certificate, Certificate.id == RegisterEntry.certificate_id)
        .order_by(User.display_name, RegisterEntry.register_number)
    )
    if query and query.strip():
        escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        stmt = stmt.where(or_(User.display_name.ilike(like, escape="\\"),
                              RegisterEntry.register_number.ilike(like, escape="\\")))
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return [
        {"name": name, "register_number": number, "status": status, "level": level,
         "specialisation": specialisation, "valid_until": valid_until.isoformat()}
        for name, number, status, level, specialisation, valid_until in session.execute(stmt)
    ]
