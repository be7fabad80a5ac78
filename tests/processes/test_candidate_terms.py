"""Candidates' terms follow the Algemene termijnenwet: a term whose last day is a Saturday,
Sunday or holiday runs through the next working day. A first-certification invoice whose 45th
day is such a day is not cancelled on it but at the end of the next working day (and can still
be paid until then); a certificate whose expiry date is a Sunday lapses at the end of Monday.

Each test moves the controllable clock to a start date next year chosen so that the term ends on
the day in question, so the tests pass whatever day they run on. The expected day is worked out
here from the calendar's plain facts (weekdays, Easter, the fixed holidays), not from
certflow.workdays."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from dateutil.easter import easter
from sqlalchemy import select

from certflow.engine.messaging import emit
from certflow.store.db import session_scope
from certflow.store.register import RegisterEntry
from handlers.recertification import dutch_today
from tests.processes.driver import Driver
from tests.processes.test_certification import apply, invoice_of, pay, until
from tests.processes.test_recertification_written import certify
from tests.engine.test_escalation import local, travel

YEAR = datetime.now(timezone.utc).year + 1  # always ahead of the real clock


def next_weekday(day: date) -> date:
    """The first Monday-to-Friday after ``day``."""
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def kings_day(year: int) -> date:
    day = date(year, 4, 27)
    return day - timedelta(days=1) if day.weekday() == 6 else day  # a Sunday: the Saturday before


def a_saturday(year: int) -> date:
    day = date(year, 2, 1)  # February: no holidays, so the Monday after is a working day
    return day + timedelta(days=(5 - day.weekday()) % 7)


# (the 45th day, the last day of the term under the act)
CASES = {
    "saturday": lambda y: (a_saturday(y), a_saturday(y) + timedelta(days=2)),
    "good_friday": lambda y: (easter(y) - timedelta(days=2), easter(y) + timedelta(days=2)),  # past Easter Monday
    "christmas": lambda y: (date(y, 12, 25), next_weekday(date(y, 12, 26))),  # past Boxing Day
    "kings_day": lambda y: (kings_day(y), next_weekday(kings_day(y))),
}


def cancelled(d: Driver) -> bool:
    return "certification/application_cancelled" in d.emails("cas")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_payment_term_ending_on_a_day_off_runs_through_the_next_working_day(driver: Driver, case: str) -> None:
    day_45, last_day = CASES[case](YEAR)
    travel(local(day_45, 10) - timedelta(days=45))
    apply(driver)
    driver.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    assert invoice_of(driver).status == "open"

    until(driver, local(day_45, 12))  # 45 days have passed: a calendar timer would cancel now
    assert not cancelled(driver)
    until(driver, local(last_day, 23, 50))  # the last day of the term, late in the evening
    assert not cancelled(driver)
    assert driver.emails("cas").count("certification/payment_reminder") == 2
    until(driver, local(last_day + timedelta(days=1), 0, 10))  # just after it
    assert driver.emails("cas")[-1] == "certification/application_cancelled"
    assert [t.element_id for t in driver.inbox("olga")] == ["handle_cancelled_application"]


def test_paid_on_the_moved_last_day_the_application_goes_on(driver: Driver) -> None:
    day_45, last_day = CASES["good_friday"](YEAR)
    travel(local(day_45, 10) - timedelta(days=45))
    apply(driver)
    driver.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    until(driver, local(last_day, 16))  # the Tuesday after Easter
    pay(driver)
    assert [t.element_id for t in driver.inbox("olga")] == ["assign_mentor"]
    until(driver, local(last_day + timedelta(days=1), 1))
    assert not cancelled(driver)


def entry_status() -> str:
    with session_scope() as s:
        return s.scalars(select(RegisterEntry.status).where(RegisterEntry.holder == "cas")).one()


def issue_certificate(driver: Driver, valid_until: date) -> None:
    """A certificate expiring on ``valid_until`` and its lifecycle, started as first
    certification starts it (the message it throws after the Register entry)."""
    cert = certify(driver, days_left=(valid_until - dutch_today(driver.engine.now())).days)
    assert cert["valid_until"] == valid_until.isoformat()
    with session_scope() as s:
        emit(s, "certificate_issued", {"business_key": "lifecycle-cas", "holder": "cas",
                                       "certificate_id": cert["certificate_id"],
                                       "register_number": cert["register_number"],
                                       "valid_until": cert["valid_until"]}, driver.engine.now())
    driver.engine.drain_messages()
    driver.settle()


def test_a_certificate_expiring_on_a_sunday_lapses_at_the_end_of_monday(driver: Driver) -> None:
    sunday = date(YEAR, 3, 1) + timedelta(days=(6 - date(YEAR, 3, 1).weekday()) % 7)  # March: no holidays
    travel(local(sunday - timedelta(days=30), 10))
    issue_certificate(driver, sunday)

    until(driver, local(sunday, 23, 50))
    assert entry_status() == "valid"
    until(driver, local(sunday + timedelta(days=1), 23, 50))  # Monday: still the candidate's term
    assert entry_status() == "valid"
    assert "lifecycle/lapsed" not in driver.emails("cas")
    until(driver, local(sunday + timedelta(days=2), 0, 10))  # Tuesday, just after midnight
    assert entry_status() == "lapsed"
    assert driver.emails("cas")[-1] == "lifecycle/lapsed"


def on_or_after_weekday(day: date) -> date:
    return day if day.weekday() < 5 else next_weekday(day)


# The invitation's month (4 months before expiry), its first days free of holidays, and the
# hour in UTC that is 09:00 in Amsterdam then: summer time (+02:00) and winter time (+01:00).
SEASONS = {"summer": (7, 7), "winter": (2, 8)}


@pytest.mark.parametrize("season", sorted(SEASONS))
def test_the_recertification_invitation_and_reminder_come_at_nine_dutch_time_all_year(
        driver: Driver, season: str) -> None:
    month, utc_hour = SEASONS[season]
    invite_day = on_or_after_weekday(date(YEAR, month, 2))
    valid_until = date(YEAR, month + 4, invite_day.day)
    remind_day = on_or_after_weekday(date(YEAR, month + 1, invite_day.day))  # early August / March
    travel(local(invite_day - timedelta(days=10), 10))
    issue_certificate(driver, valid_until)

    nine = datetime(invite_day.year, invite_day.month, invite_day.day, utc_hour, tzinfo=timezone.utc)
    assert nine == local(invite_day, 9)  # the plain fact the test stands on
    until(driver, nine - timedelta(minutes=5))
    assert "lifecycle/invitation" not in driver.emails("cas")
    until(driver, nine + timedelta(minutes=5))  # 09:05 Dutch time: the invitation is there
    assert driver.emails("cas")[-1] == "lifecycle/invitation"

    nine = datetime(remind_day.year, remind_day.month, remind_day.day, utc_hour, tzinfo=timezone.utc)
    until(driver, nine - timedelta(minutes=5))
    assert "lifecycle/reminder" not in driver.emails("cas")
    until(driver, nine + timedelta(minutes=5))
    assert driver.emails("cas")[-1] == "lifecycle/reminder"
