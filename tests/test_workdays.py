"""The working-day calendar of the Algemene termijnenwet, and terms counted on it."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from certflow.localtime import LOCAL_TZ, local_date
from certflow.workdays import Calendar, TermError, calendar, check_file, load, parse_term
from tests.support import ROOT

CAL = calendar(ROOT / "processes")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ).astimezone(timezone.utc)


def due(start: str, term: str, move: bool = False) -> str:
    return CAL.deadline(local(start), parse_term(term), move).astimezone(LOCAL_TZ).isoformat(timespec="minutes")


@pytest.mark.parametrize(("day", "why"), [
    ("2026-01-01", "New Year's Day"),
    ("2026-04-03", "Good Friday"),
    ("2026-04-06", "Easter Monday"),
    ("2026-04-27", "King's Day"),              # a Monday
    ("2025-04-26", "King's Day"),              # 27 April 2025 is a Sunday: celebrated on Saturday
    ("2026-05-05", "Liberation Day (5 May, every year)"),  # not a lustrum year
    ("2026-05-14", "Ascension Day"),
    ("2026-05-15", "equated by Royal decree: vrijdag na Hemelvaartsdag"),
    ("2026-05-25", "Whit Monday"),
    ("2026-12-25", "Christmas Day"),
    ("2025-12-26", "Second Day of Christmas"),
    ("2026-12-31", "closing day: bureau gesloten (oudejaarsdag)"),
    ("2026-11-28", "Saturday"),
    ("2025-04-27", "Sunday"),
])
def test_days_that_are_not_working_days_say_why(day: str, why: str) -> None:
    assert CAL.reason(date.fromisoformat(day)) == why


@pytest.mark.parametrize("day", ["2025-04-28", "2026-04-02", "2026-05-13", "2026-05-18", "2026-12-24", "2026-05-06"])
def test_ordinary_weekdays_are_working_days(day: str) -> None:
    assert CAL.is_working_day(date.fromisoformat(day))


def test_the_holidays_package_alone_is_not_the_act() -> None:
    """What this calendar adds deliberately: 5 May outside lustrum years and the equated day."""
    bare = Calendar()
    assert bare.reason(date(2026, 5, 5)) is not None  # 5 May, every year
    assert bare.is_working_day(date(2026, 5, 15))      # the equated Friday is data, not built in
    assert bare.is_working_day(date(2026, 4, 5)) is False  # Easter Sunday: only as a Sunday
    assert bare.reason(date(2026, 4, 5)) == "Sunday"


@pytest.mark.parametrize(("start", "term", "expected"), [
    # Good Friday and Easter Monday: Thursday + 1 working day is Tuesday (end of day)
    ("2026-04-02T10:00", "1 werkdag", "2026-04-08T00:00+02:00"),
    # Ascension and the Friday after it: Wednesday + 1 is the next Monday
    ("2026-05-13T09:00", "1 werkdag", "2026-05-19T00:00+02:00"),
    # 5 May 2026 (a Tuesday, not a lustrum year) is skipped
    ("2026-05-04T09:00", "1 working day", "2026-05-07T00:00+02:00"),
    # Christmas and Boxing Day 2025 (Thursday, Friday): Wednesday + 2 is Tuesday 30 December
    ("2025-12-24T16:00", "2 werkdagen", "2025-12-31T00:00+01:00"),
    # the office's own closing day, then New Year and a weekend
    ("2026-12-30T09:00", "1 werkdag", "2027-01-05T00:00+01:00"),
    # ten working days across two weekends, Easter and the change to summer time
    ("2026-03-23T09:00", "10 werkdagen", "2026-04-09T00:00+02:00"),
    # calendar days are elapsed time, like the diagram's timers (summer time began meanwhile)
    ("2026-03-20T10:00", "P14D", "2026-04-03T11:00+02:00"),
    ("2026-01-31T10:00", "P1M", "2026-02-28T10:00+01:00"),
])
def test_due_dates_count_working_days(start: str, term: str, expected: str) -> None:
    assert due(start, term) == expected


def test_a_calendar_term_ending_on_a_holiday_moves_to_the_next_working_day_when_the_policy_says_so() -> None:
    # 14 days from 20 March 2026 is Good Friday; Easter Monday follows the weekend: Tuesday
    assert due("2026-03-20T10:00", "P14D", move=True) == "2026-04-08T00:00+02:00"
    # King's Day celebrated on Saturday 26 April 2025, Sunday 27: Monday 28 April is a working day
    assert due("2025-04-12T10:00", "P14D", move=True) == "2025-04-29T00:00+02:00"
    # a term ending on a working day does not move
    assert due("2026-03-24T10:00", "P14D", move=True) == "2026-04-07T11:00+02:00"


def test_reminders_and_further_terms_count_working_days_back_and_forth() -> None:
    end = local("2026-04-08T00:00")  # end of Tuesday after Easter
    remind = CAL.before(end, parse_term("2 werkdagen"))
    # Tuesday and Thursday 2 April are the two working days before it (Good Friday, Easter Monday skipped)
    assert remind.astimezone(LOCAL_TZ).isoformat(timespec="minutes") == "2026-04-02T00:00+02:00"
    later = CAL.after(local("2026-05-13T09:00"), parse_term("2 werkdagen"))
    assert local_date(later) == date(2026, 5, 19)  # Ascension, equated Friday, weekend skipped
    assert CAL.after(local("2026-05-13T09:00"), parse_term("P2D")) == local("2026-05-15T09:00")


@pytest.mark.parametrize("bad", ["14 dagen", "P", "PT", "werkdagen", "P1.5D", "-1 werkdag"])
def test_terms_that_are_neither_refuse_clearly(bad: str) -> None:
    with pytest.raises(TermError, match="ISO 8601 duration"):
        parse_term(bad)


def test_the_closing_days_file_is_checked(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "closing_days.json").write_text(json.dumps({
        "closing_days": [{"date": "2026-02-30", "name": "x"}, {"date": "2026-03-02"}], "holidays": []}))
    problems = check_file(tmp_path)
    assert any("2026-02-30" in p and "closing_days[0]" in p for p in problems)
    assert any("closing_days[1]" in p for p in problems)
    assert any("unknown key" in p and "holidays" in p for p in problems)
    assert check_file(ROOT / "processes") == []
    cal, _ = load(tmp_path / "missing.json")
    assert cal.is_working_day(date(2026, 12, 31))  # without the file: the act's days only
