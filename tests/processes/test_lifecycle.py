"""The certificate lifecycle (processes/certificate_lifecycle), every path: first certification
starts it; it invites 4 months and reminds 3 months before expiry, follows a recertification
(the messages a recertification process throws) into the next term, and lets a certificate that
was not recertified in time lapse — in-process on SQLite and on a real worker."""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

import handlers
from certflow.engine.messaging import emit
from certflow.localtime import LOCAL_TZ
from certflow.settings import get_settings
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import User
from certflow.store.register import Certificate, RegisterEntry
from certflow.services.email import long_date
from certflow.services.register import public_register
from tests.processes.driver import Driver
from tests.processes.driver import calendar as work_calendar
from tests.processes.test_certification import grant, later, lifecycle_of, until

LIFECYCLE_MAILS = ("lifecycle/invitation", "lifecycle/reminder", "lifecycle/extended", "lifecycle/lapsed")


def months_before(day: str, months: int) -> str:
    start = date.fromisoformat(day)
    year, month0 = divmod(start.year * 12 + start.month - 1 - months, 12)
    return date(year, month0 + 1, min(start.day, calendar.monthrange(year, month0 + 1)[1])).isoformat()


def move_to(d: Driver, day: str, clock: str, *, hours: int) -> None:
    """Move the clock to ``hours`` away from ``day`` at ``clock`` Dutch time, summer or winter
    (the time the diagram's timers name), firing whatever falls due on the way."""
    target = datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=LOCAL_TZ) + timedelta(hours=hours)
    seconds = int((target - d.engine.now()).total_seconds())
    assert seconds > 0, f"the clock is already past {target}"
    later(d, f"PT{seconds}S")


def expires(valid_until: str) -> datetime:
    """When the certificate lapses: the end of valid_until, or of the next working day when
    valid_until is a day off (the candidate's term, Algemene termijnenwet)."""
    return work_calendar().term_end(date.fromisoformat(valid_until))


def working(day: str) -> str:
    return work_calendar().next_working_day(date.fromisoformat(day)).isoformat()


def around(d: Driver, moment: datetime, *, hours: int) -> None:
    until(d, moment + timedelta(hours=hours))


def lifecycle_mails(d: Driver) -> list[str]:
    return [t for t in d.emails("cas") if t in LIFECYCLE_MAILS]


def letter(template: str, nth: int = -1) -> EmailMessage:
    with session_scope() as s:
        rows = s.scalars(select(EmailMessage).where(EmailMessage.template == template)
                         .order_by(EmailMessage.created_at)).all()
        return rows[nth]


def lifecycle(d: Driver) -> tuple[str, dict[str, Any]]:
    found = lifecycle_of(d)
    view = d.engine.instance(d.people["olga"], found["id"])
    return view.status, view.data


def entry() -> RegisterEntry:
    with session_scope() as s:
        return s.scalars(select(RegisterEntry).where(RegisterEntry.holder == "cas")).one()


def in_english(username: str) -> None:
    with session_scope() as s:
        user = s.get(User, username)
        assert user is not None
        user.language = "en"


def recertification_signed_up(d: Driver) -> None:
    """What a recertification process throws once the sign-up is accepted and paid."""
    with session_scope() as s:
        emit(s, "recertification_started", {"holder": "cas"}, d.engine.now())
    d.engine.drain_messages()
    d.settle()


def recertification_granted(d: Driver, old_valid_until: str, *, throw: bool = True) -> dict[str, Any]:
    """What a granted recertification does: a certificate from the old expiry date (no gap,
    no overlap), the Register extended to it, then the message ``recertified``."""
    with session_scope() as s:
        ctx = handlers.HandlerContext(session=s, now=d.engine.now(), idempotency_key=f"recert:{old_valid_until}",
                                      settings=get_settings())
        new = handlers.get("certificates/issue")(ctx, {"holder": "cas", "valid_from": old_valid_until})
        handlers.get("register/extend")(replace(ctx, idempotency_key=f"extend:{old_valid_until}"),
                                        {"holder": "cas", "certificate_id": new["certificate_id"]})
        payload = {"holder": "cas", "certificate_id": new["certificate_id"], "valid_until": new["valid_until"]}
        if throw:
            emit(s, "recertified", payload, ctx.now)
    if throw:
        d.engine.drain_messages()
        d.settle()
    return new


def test_granted_starts_the_lifecycle_invitation_reminder_then_lapse(driver: Driver) -> None:
    certificate = grant(driver)
    valid_until = certificate.valid_until.isoformat()
    status, data = lifecycle(driver)
    assert status == "running"
    assert (data["holder"], data["certificate_id"], data["valid_until"]) == ("cas", certificate.id, valid_until)
    assert data["invite_at"] == working(months_before(valid_until, 4))  # on a working day
    assert data["remind_at"] == working(months_before(valid_until, 3))
    waits = driver.engine.instance(driver.people["olga"], lifecycle_of(driver)["id"]).waiting_for
    assert sorted(waits) == ["recertification_started (holder=cas)", "recertified (holder=cas)"]

    move_to(driver, data["invite_at"], "09:00:00", hours=-1)
    assert lifecycle_mails(driver) == []
    move_to(driver, data["invite_at"], "09:00:00", hours=1)
    assert lifecycle_mails(driver) == ["lifecycle/invitation"]
    invitation = letter("lifecycle/invitation")
    assert long_date(valid_until, "nl") in invitation.subject
    assert long_date(data["remind_at"], "nl") in invitation.body_text  # sign up by this date

    move_to(driver, data["remind_at"], "09:00:00", hours=1)
    assert lifecycle_mails(driver) == ["lifecycle/invitation", "lifecycle/reminder"]
    assert long_date(valid_until, "nl") in letter("lifecycle/reminder").body_text

    around(driver, expires(valid_until), hours=-1)  # valid_until is the last valid day
    assert entry().status == "valid" and lifecycle(driver)[0] == "running"
    around(driver, expires(valid_until), hours=1)
    assert (entry().status, entry().valid_until.isoformat()) == ("lapsed", valid_until)
    with session_scope() as s:
        [public] = public_register(s, certificate.register_number)
        lapsed_certificate = s.get(Certificate, certificate.id)
        assert lapsed_certificate is not None and lapsed_certificate.status == "lapsed"
    assert (public["status"], public["valid_until"]) == ("lapsed", valid_until)
    assert lifecycle_mails(driver) == ["lifecycle/invitation", "lifecycle/reminder", "lifecycle/lapsed"]
    lapsed = letter("lifecycle/lapsed")
    assert certificate.register_number in lapsed.body_text and long_date(valid_until, "nl") in lapsed.body_text
    assert lifecycle(driver)[0] == "completed"


def test_recertification_extends_and_the_next_term_starts_over(driver: Driver) -> None:
    certificate = grant(driver)
    in_english("cas")  # every date in the professional's own language
    old_until = certificate.valid_until.isoformat()
    _, data = lifecycle(driver)
    move_to(driver, data["invite_at"], "09:00:00", hours=1)
    assert lifecycle_mails(driver) == ["lifecycle/invitation"]
    assert letter("lifecycle/invitation").subject == (
        f"Your certificate is valid until {long_date(old_until, 'en')}: sign up for recertification")

    recertification_signed_up(driver)
    assert entry().status == "recertification_running"
    with session_scope() as s:
        assert public_register(s, certificate.register_number)[0]["status"] == "recertification_running"
    move_to(driver, data["remind_at"], "09:00:00", hours=1)
    assert lifecycle_mails(driver) == ["lifecycle/invitation"]  # signed up: no reminder

    new = recertification_granted(driver, old_until)
    assert new["valid_from"] == old_until  # no gap, no overlap
    assert lifecycle_mails(driver) == ["lifecycle/invitation", "lifecycle/extended"]
    extended = letter("lifecycle/extended")
    assert extended.language == "en" and long_date(new["valid_until"], "en") in extended.subject
    assert long_date(old_until, "en") in extended.body_text
    status, data = lifecycle(driver)
    assert status == "running"
    assert (data["certificate_id"], data["valid_until"]) == (new["certificate_id"], new["valid_until"])
    assert data["invite_at"] == working(months_before(new["valid_until"], 4))

    around(driver, expires(old_until), hours=1)  # the old expiry passes: nothing lapses
    assert (entry().status, entry().valid_until.isoformat()) == ("valid", new["valid_until"])
    assert "lifecycle/lapsed" not in lifecycle_mails(driver)
    move_to(driver, data["invite_at"], "09:00:00", hours=-1)
    assert lifecycle_mails(driver).count("lifecycle/invitation") == 1
    move_to(driver, data["invite_at"], "09:00:00", hours=1)  # 4 months before the NEW expiry
    assert lifecycle_mails(driver)[-1] == "lifecycle/invitation"
    assert lifecycle_mails(driver).count("lifecycle/invitation") == 2
    assert long_date(new["valid_until"], "en") in letter("lifecycle/invitation").subject
    assert lifecycle(driver)[0] == "running"


def test_recertification_started_but_not_finished_lapses_at_expiry(driver: Driver) -> None:
    certificate = grant(driver)
    valid_until = certificate.valid_until.isoformat()
    recertification_signed_up(driver)  # early, long before the invitation
    assert entry().status == "recertification_running"
    around(driver, expires(valid_until), hours=-1)
    assert lifecycle_mails(driver) == []  # signed up: no invitation, no reminder
    assert entry().status == "recertification_running"
    around(driver, expires(valid_until), hours=1)
    assert entry().status == "lapsed"
    assert lifecycle_mails(driver) == ["lifecycle/lapsed"]
    assert lifecycle(driver)[0] == "completed"


def test_recertified_without_a_reported_sign_up_still_extends(driver: Driver) -> None:
    """The safety net: a recertification that reports only its result is not lost."""
    certificate = grant(driver)
    old_until = certificate.valid_until.isoformat()
    new = recertification_granted(driver, old_until, throw=False)
    driver.engine.deliver_message(driver.people["olga"], "recertified",
                                  {"holder": "cas", "certificate_id": new["certificate_id"],
                                   "valid_until": new["valid_until"]}, correlation={"holder": "cas"})
    driver.settle()
    assert lifecycle_mails(driver) == ["lifecycle/extended"]
    status, data = lifecycle(driver)
    assert (status, data["valid_until"]) == ("running", new["valid_until"])
    around(driver, expires(old_until), hours=1)
    assert (entry().status, lifecycle_mails(driver)) == ("valid", ["lifecycle/extended"])
