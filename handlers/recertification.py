"""Recertification: who may sign up, which certificate is being renewed, and whether the
assessors the office chose may assess this professional.

Start guard
-----------
``recertification/signup_allowed``  (start data ``{candidate, level?}``)
    Refuses, saying what to do instead, when the candidate is not in the Register, when their
    certificate lapsed, was withdrawn or is past its valid_until (a Dutch calendar date; when
    valid_until is not a working day, through the next working day, as the lifecycle's lapse), when
    it is suspended, when a recertification of theirs is already running (a
    ``recertification*`` instance started for them is still running, paid or not), when the
    Register still says "recertification running" after an earlier one ended without a new
    certificate (the office decides about another try), or when ``level`` is given and is not
    ``"same"`` or ``"changed"``. Signing up later than three
    months before expiry is allowed: ``recertification/current_certificate`` reports it as
    ``late_signup`` so the process can warn the office and the candidate.

Operators
---------
``recertification/current_certificate``
    input:  ``{holder: str (username)}``
    result: ``{certificate_id, register_number, valid_until (ISO), late_signup: bool,
    days_left: int}`` — the certificate the Register shows for the holder now. ``late_signup``
    is true when today (Dutch date) is later than three months before valid_until (moved to
    the next working day when that is not one: the sign-up date the invitation names);
    ``days_left`` counts the days from today to valid_until.
``recertification/check_assessors``
    input:  ``{holder: str, assessors: list[str]}``
    result: ``{ok: bool, problems: list[str]}`` — ``ok`` only when every assessor is a known
    user in the ``assessor`` group, none is the holder, their mentor or their supervisor
    (``certflow.services.register.assessor_problems``), and they are different people. The
    same rule is registered as the conflict rule ``recertification/assessors``, which holds
    staff to it when they later reassign an assessor's task.

Both operators only read, so a redelivered job simply reads again.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow import workdays
from certflow.localtime import LOCAL_TZ as LOCAL_ZONE
from certflow.settings import get_settings
from certflow.store.models import AuditEvent, Instance
from certflow.store.register import RegisterEntry
from handlers import HandlerContext, PermanentError, conflict_rule, guard, handler
from certflow.services.register import assessor_problems
from certflow.i18n import Day, Message, N_

# The certifier's calendar: a certificate valid until 2 March is still valid on 2 March in
# the Netherlands, whatever the UTC date is.
# Signing up later than this many months before expiry is late (but still allowed).
SIGNUP_MONTHS_BEFORE = 3
LEVELS = ("same", "changed")
# Processes that renew a certificate: only one of them may run per professional at a time.
RECERTIFICATION_PREFIX = "recertification"


def _calendar() -> workdays.Calendar:
    return workdays.calendar(get_settings().processes_dir)


def last_signup_day(valid_until: date) -> date:
    """The last day a sign-up is taken: valid_until, or the next working day when valid_until
    is not one (Algemene termijnenwet; certificate_lifecycle lapses at its end, ``term_end``)."""
    return _calendar().next_working_day(valid_until)


def signup_by(valid_until: date) -> date:
    """Three months before expiry, moved to a working day: the "sign up by" date the
    invitation names (certificate_lifecycle's ``remind_at``)."""
    return _calendar().next_working_day(months_before(valid_until, SIGNUP_MONTHS_BEFORE))


def dutch_today(now: datetime) -> date:
    return now.astimezone(LOCAL_ZONE).date()


def months_before(day: date, months: int) -> date:
    """The same day ``months`` earlier; the 31st becomes the last day of a shorter month."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    for candidate_day in (day.day, 30, 29, 28):
        try:
            return date(year, month + 1, candidate_day)
        except ValueError:
            continue
    raise ValueError(f"no date {months} months before {day}")  # pragma: no cover  # pragma: no mutate


# --- the start guard -----------------------------------------------------------------------

@guard("recertification/signup_allowed")
def signup_allowed(session: Session, now: datetime, data: dict[str, Any]) -> str | None:
    candidate = data.get("candidate")
    if not isinstance(candidate, str) or not candidate:
        return Message(N_("Say who recertifies: the start data needs 'candidate' (a username)"))
    level = data.get("level", LEVELS[0])
    if level not in LEVELS:
        return Message(N_("level must be 'same' or 'changed', not '%(level)s'"), level=level)
    entry = session.scalar(select(RegisterEntry).where(RegisterEntry.holder == candidate))
    if entry is None:
        return Message(N_("You are not in the register; apply for first certification (process 'certification')"))
    return (_entry_refusal(entry, dutch_today(now)) or _running_refusal(session, candidate)
            or _unfinished_refusal(entry))


def _entry_refusal(entry: RegisterEntry, today: date) -> str | None:
    if entry.status == "withdrawn":
        return Message(N_("Your certificate was withdrawn; recertification is not possible — "
                          "apply for first certification instead (process 'certification')"))
    if entry.status == "lapsed" or last_signup_day(entry.valid_until) < today:
        return Message(N_("Your certificate expired on %(until)s; recertification is no longer "
                          "possible — apply for first certification instead (process "
                          "'certification')"), until=Day.of(entry.valid_until))
    if entry.status == "suspended":
        return Message(N_("Your certificate is suspended; it cannot be recertified until the "
                          "suspension is lifted — contact the office"))
    return None


def _running_refusal(session: Session, candidate: str) -> str | None:
    """A recertification started for this candidate and not yet ended (before payment the
    Register does not know about it yet). Its start data is in the instance_started audit
    event, which is where a person starting it for someone else is recorded too."""
    rows = session.execute(
        select(Instance.process_id, Instance.business_key, AuditEvent.detail)
        .join(AuditEvent, AuditEvent.instance_id == Instance.id)
        .where(Instance.process_id.startswith(RECERTIFICATION_PREFIX),
               Instance.status == "running", AuditEvent.action == "instance_started")
    ).all()
    for process_id, business_key, detail in rows:
        started_with = (detail or {}).get("data") or {}
        if started_with.get("candidate") == candidate:
            return Message(N_("A recertification for you is already running (%(process)s "
                              "'%(key)s'); continue that one instead of signing up again"),
                           process=process_id, key=business_key)
    return None


def _unfinished_refusal(entry: RegisterEntry) -> str | None:
    """The Register still says "recertification running" although none runs: an earlier one
    ended without a new certificate (not granted). Whether to try again is the office's call."""
    if entry.status == "recertification_running":
        return Message(N_("The Register shows a recertification of yours that ended without a "
                          "new certificate; contact the office before signing up again"))
    return None


# --- operators -----------------------------------------------------------------------------

class HolderIn(BaseModel):
    holder: str = Field(min_length=1)


class CheckAssessorsIn(BaseModel):
    holder: str = Field(min_length=1)
    assessors: list[str] = Field(min_length=1, max_length=5)


@handler("recertification/current_certificate", effects="database",
         summary=N_("Look up the certificate to be renewed; refused when it is not valid."))
def current_certificate(ctx: HandlerContext, data: HolderIn) -> dict[str, Any]:
    entry = ctx.session.scalar(select(RegisterEntry).where(RegisterEntry.holder == data.holder))
    if entry is None:
        raise PermanentError(f"recertification: {data.holder!r} is not in the register")
    if entry.status not in ("valid", "recertification_running"):
        raise PermanentError(
            f"recertification: the register entry of {data.holder!r} is {entry.status}; "
            "only a valid certificate can be recertified"
        )
    today = dutch_today(ctx.now)
    return {
        "certificate_id": entry.certificate_id, "register_number": entry.register_number,
        "valid_until": entry.valid_until.isoformat(),
        "late_signup": today > signup_by(entry.valid_until),
        "days_left": (entry.valid_until - today).days,
    }


@handler("recertification/check_assessors", effects="database",
         summary=N_("Check that the chosen assessors did not guide the professional (no conflict of interest)."))
def check_assessors(ctx: HandlerContext, data: CheckAssessorsIn) -> dict[str, Any]:
    problems = assessor_problems(ctx.session, data.holder, data.assessors)
    return {"ok": not problems, "problems": problems}


# The same rule when staff later reassign an assessor's task (user tasks with
# assignment_rule="recertification/assessors"; see certflow.engine.assignment).
conflict_rule("recertification/assessors")(assessor_problems)
