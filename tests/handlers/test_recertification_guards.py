"""Who may sign up for recertification (the start guard), the certificate being renewed, and the
check on the assessors the office chose — on the real register and certificate handlers."""

# Fixtures are imported by name from _fixtures_records, so pytest finds them in this module;
# ruff reads their use as parameters as a redefinition (F811).
# ruff: noqa: F811

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import handlers.certificates  # noqa: F401  (registers the operators)
import handlers.recertification  # noqa: F401
import handlers.register  # noqa: F401
from certflow.settings import Settings
from certflow.store.models import AuditEvent, Definition, Instance
from handlers import REGISTRY, PermanentError
from handlers.recertification import months_before
from tests.handlers._fixtures_records import NOW, add_user, engine, make_ctx, session, settings  # noqa: F401

GUARD = "recertification/signup_allowed"
FIRST = "apply for first certification instead (process 'certification')"


def run(session: Session, settings: Settings, operator: str, key: str, now: datetime = NOW,
        **params: Any) -> dict[str, Any]:
    return REGISTRY[operator](make_ctx(session, settings, key, now), params)


def certified(session: Session, settings: Settings, holder: str = "anna",
              valid_until: str = "2029-03-02", mentor: str | None = None,
              supervisor: str | None = None) -> dict[str, Any]:
    add_user(session, holder, holder.title())
    start = date.fromisoformat(valid_until).replace(year=date.fromisoformat(valid_until).year - 3)
    cert = run(session, settings, "certificates/issue", f"issue-{holder}", holder=holder,
               valid_from=start.isoformat(), valid_years=3)
    run(session, settings, "register/enter", f"enter-{holder}", holder=holder,
        certificate_id=cert["certificate_id"])
    if mentor or supervisor:
        run(session, settings, "register/set_relations", f"rel-{holder}", holder=holder,
            mentor=mentor, supervisor=supervisor)
    return cert


def allowed(session: Session, data: dict[str, Any], now: datetime = NOW) -> str | None:
    return REGISTRY.guards[GUARD](session, now, data)


def running_instance(session: Session, process_id: str, candidate: str, status: str = "running") -> None:
    definition = session.scalar(select(Definition).where(Definition.process_id == process_id))
    if definition is None:
        definition = Definition(process_id=process_id, version=1, name=process_id, content_hash="x",
                                sources={}, spec={}, forms={}, elements={}, deployed_at=NOW, deployed_by="t")
        session.add(definition)
        session.flush()
    instance = Instance(definition_id=definition.id, process_id=process_id, business_key=f"K-{candidate}-{status}",
                        status=status, state={}, serializer_version="t", started_by="office",
                        created_at=NOW, updated_at=NOW)
    session.add(instance)
    session.flush()
    session.add(AuditEvent(instance_id=instance.id, actor="office", action="instance_started",
                           detail={"data": {"candidate": candidate}}, at=NOW))
    session.flush()


# --- the guard -----------------------------------------------------------------------------

def test_a_valid_certificate_may_sign_up(session: Session, settings: Settings) -> None:
    certified(session, settings)
    assert allowed(session, {"candidate": "anna", "level": "same"}) is None
    assert allowed(session, {"candidate": "anna", "level": "changed"}) is None
    assert allowed(session, {"candidate": "anna"}) is None  # the supervisor-backed process has no level


def test_late_sign_up_is_allowed(session: Session, settings: Settings) -> None:
    certified(session, settings, valid_until="2026-04-01")  # a month left
    assert allowed(session, {"candidate": "anna", "level": "same"}) is None


def test_start_data_must_say_who_and_a_known_level(session: Session, settings: Settings) -> None:
    certified(session, settings)
    assert "needs 'candidate'" in (allowed(session, {"level": "same"}) or "")
    assert allowed(session, {"candidate": "anna", "level": "higher"}) == "level must be 'same' or 'changed', not 'higher'"


def test_someone_not_in_the_register_is_sent_to_first_certification(session: Session, settings: Settings) -> None:
    add_user(session, "bob", "Bob")
    assert allowed(session, {"candidate": "bob", "level": "same"}) == (
        "You are not in the register; apply for first certification (process 'certification')")


def test_an_expired_certificate_cannot_be_recertified(session: Session, settings: Settings) -> None:
    certified(session, settings, valid_until="2026-02-27")  # a Friday; NOW is Monday 2 March 2026
    assert allowed(session, {"candidate": "anna", "level": "same"}) == (
        f"Your certificate expired on 27 February 2026; recertification is no longer possible — {FIRST}")


def test_expiry_is_judged_on_the_dutch_date(session: Session, settings: Settings) -> None:
    certified(session, settings, valid_until="2026-02-26")  # a Thursday
    late_evening_utc = datetime(2026, 2, 26, 22, 30, tzinfo=timezone.utc)  # 23:30 in Amsterdam
    after_midnight = datetime(2026, 2, 26, 23, 30, tzinfo=timezone.utc)  # 00:30 on 27 February there
    assert allowed(session, {"candidate": "anna"}, late_evening_utc) is None  # the last valid day
    assert FIRST in (allowed(session, {"candidate": "anna"}, after_midnight) or "")


@pytest.mark.parametrize("valid_until, last_day", [
    ("2026-03-01", date(2026, 3, 2)),  # a Sunday: through Monday
    ("2026-04-03", date(2026, 4, 7)),  # Good Friday: past Easter Monday, through Tuesday
    ("2026-12-25", date(2026, 12, 28)),  # Christmas (a Friday): past Boxing Day and Sunday
])
def test_an_expiry_on_a_day_off_takes_a_sign_up_through_the_next_working_day(
        session: Session, settings: Settings, valid_until: str, last_day: date) -> None:
    """The candidate's term ends with valid_until; on a day off it runs through the next working
    day (Algemene termijnenwet), as certificate_lifecycle's lapse does."""
    certified(session, settings, valid_until=valid_until)
    evening = datetime(last_day.year, last_day.month, last_day.day, 21, 0, tzinfo=timezone.utc)  # 22:00 or 23:00 there
    next_morning = datetime(last_day.year, last_day.month, last_day.day, 23, 30, tzinfo=timezone.utc)
    assert allowed(session, {"candidate": "anna"}, evening) is None
    assert FIRST in (allowed(session, {"candidate": "anna"}, next_morning) or "")


def test_a_lapsed_certificate_cannot_be_recertified(session: Session, settings: Settings) -> None:
    certified(session, settings)
    run(session, settings, "register/lapse", "lapse-anna", holder="anna")
    refusal = allowed(session, {"candidate": "anna", "level": "same"}) or ""
    assert refusal.startswith("Your certificate expired on 2 March 2029") and FIRST in refusal


def test_a_withdrawn_certificate_cannot_be_recertified(session: Session, settings: Settings) -> None:
    certified(session, settings)
    run(session, settings, "register/withdraw", "withdraw-anna", holder="anna", reason="Klacht gegrond")
    assert allowed(session, {"candidate": "anna"}) == (
        f"Your certificate was withdrawn; recertification is not possible — {FIRST}")


def test_a_suspended_certificate_waits_for_the_office(session: Session, settings: Settings) -> None:
    certified(session, settings)
    run(session, settings, "register/suspend", "suspend-anna", holder="anna", reason="Registratie onbetaald")
    assert allowed(session, {"candidate": "anna"}) == (
        "Your certificate is suspended; it cannot be recertified until the suspension is lifted "
        "— contact the office")


def test_a_running_recertification_is_named_before_the_register_status(session: Session,
                                                                       settings: Settings) -> None:
    certified(session, settings)
    run(session, settings, "register/recertification_started", "started-anna", holder="anna")
    running_instance(session, "recertification_written", "anna")
    assert "already running (recertification_written 'K-anna-running')" in (allowed(session, {"candidate": "anna"}) or "")


def test_an_earlier_recertification_that_ended_unrenewed_goes_to_the_office(session: Session,
                                                                           settings: Settings) -> None:
    certified(session, settings)
    run(session, settings, "register/recertification_started", "started-anna", holder="anna")
    running_instance(session, "recertification_written", "anna", status="completed")
    assert allowed(session, {"candidate": "anna"}) == (
        "The Register shows a recertification of yours that ended without a new certificate; "
        "contact the office before signing up again")


@pytest.mark.parametrize("process_id", ["recertification_written", "recertification_supervisor"])
def test_a_running_unpaid_recertification_is_not_started_twice(session: Session, settings: Settings,
                                                               process_id: str) -> None:
    certified(session, settings)
    running_instance(session, process_id, "anna")
    assert allowed(session, {"candidate": "anna", "level": "same"}) == (
        f"A recertification for you is already running ({process_id} 'K-anna-running'); continue that one "
        "instead of signing up again")


def test_other_instances_do_not_block(session: Session, settings: Settings) -> None:
    certified(session, settings)
    running_instance(session, "recertification_written", "anna", status="completed")
    running_instance(session, "recertification_written", "bob")
    running_instance(session, "certification", "anna")
    assert allowed(session, {"candidate": "anna", "level": "same"}) is None


def test_only_whom_a_recertification_was_started_for_counts(session: Session, settings: Settings) -> None:
    """Bob's running recertification in which a later step mentions anna does not block anna."""
    certified(session, settings)
    running_instance(session, "recertification_written", "bob")
    bobs = session.scalar(select(Instance).where(Instance.business_key == "K-bob-running"))
    assert bobs is not None
    session.add(AuditEvent(instance_id=bobs.id, actor="office", action="task_completed_by_user",
                           detail={"data": {"candidate": "anna"}}, at=NOW))
    session.flush()
    assert allowed(session, {"candidate": "anna", "level": "same"}) is None


# --- recertification/current_certificate ----------------------------------------------------

def test_current_certificate_and_late_signup(session: Session, settings: Settings) -> None:
    cert = certified(session, settings, valid_until="2026-06-02")
    on_time = run(session, settings, "recertification/current_certificate", "c1", holder="anna")
    assert on_time == {"certificate_id": cert["certificate_id"], "register_number": cert["register_number"],
                       "valid_until": "2026-06-02", "late_signup": False, "days_left": 92}
    # exactly three months before expiry is still on time; a day later is late
    day_later = datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)
    late = run(session, settings, "recertification/current_certificate", "c2", day_later, holder="anna")
    assert (late["late_signup"], late["days_left"]) == (True, 91)


def test_late_signup_counts_from_the_working_day_the_invitation_names(session: Session, settings: Settings) -> None:
    certified(session, settings, valid_until="2026-06-07")  # three months before: Saturday 7 March
    monday = datetime(2026, 3, 9, 15, 0, tzinfo=timezone.utc)
    tuesday = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)
    on_monday = run(session, settings, "recertification/current_certificate", "c1", monday, holder="anna")
    on_tuesday = run(session, settings, "recertification/current_certificate", "c2", tuesday, holder="anna")
    assert (on_monday["late_signup"], on_tuesday["late_signup"]) == (False, True)


def test_current_certificate_needs_a_valid_entry(session: Session, settings: Settings) -> None:
    add_user(session, "bob", "Bob")
    with pytest.raises(PermanentError, match="not in the register"):
        run(session, settings, "recertification/current_certificate", "c1", holder="bob")
    certified(session, settings)
    run(session, settings, "register/lapse", "lapse-anna", holder="anna")
    with pytest.raises(PermanentError, match="is lapsed"):
        run(session, settings, "recertification/current_certificate", "c2", holder="anna")


def test_months_before_keeps_to_the_calendar() -> None:
    assert months_before(date(2029, 3, 2), 3) == date(2028, 12, 2)
    assert months_before(date(2029, 5, 31), 3) == date(2029, 2, 28)
    assert months_before(date(2028, 5, 31), 3) == date(2028, 2, 29)
    assert months_before(date(2029, 1, 15), 3) == date(2028, 10, 15)
    assert months_before(date(2029, 7, 31), 3) == date(2029, 4, 30)


# --- recertification/check_assessors -------------------------------------------------------

def check(session: Session, settings: Settings, *assessors: str) -> dict[str, Any]:
    return run(session, settings, "recertification/check_assessors", "chk", holder="anna",
               assessors=list(assessors))


@pytest.fixture
def assessors(session: Session, settings: Settings) -> None:
    certified(session, settings, mentor="ria", supervisor="sam")
    for name in ("ria", "ab", "sam", "ina"):
        add_user(session, name, name.title()).groups = ["assessor"]
    add_user(session, "kees", "Kees").groups = ["committee"]
    session.flush()


@pytest.mark.usefixtures("assessors")
def test_independent_assessors_pass(session: Session, settings: Settings) -> None:
    assert check(session, settings, "ina", "ab") == {"ok": True, "problems": []}


@pytest.mark.usefixtures("assessors")
@pytest.mark.parametrize(("chosen", "problem"), [
    (("ria", "ab"), "ria was anna's mentor"),
    (("ab", "sam"), "sam is anna's supervisor"),
    (("ab", "ab"), "the assessors must be different people"),
    (("anna", "ab"), "anna is not in the assessor group"),
    (("nobody", "ab"), "nobody is not a known user"),
    (("kees", "ab"), "kees is not in the assessor group"),
])
def test_conflicted_or_unsuitable_assessors_are_reported(session: Session, settings: Settings,
                                                         chosen: tuple[str, str], problem: str) -> None:
    result = check(session, settings, *chosen)
    assert result["ok"] is False and problem in result["problems"]
