"""The working-day calendar of the Algemene termijnenwet, and terms counted on it."""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from certflow.localtime import LOCAL_TZ, local_date
from certflow.workdays import Calendar, TermError, calendar, check_file, load, parse_term
from tests.support import ROOT

def cal() -> Calendar:
    """The organisation's calendar, made anew: a calendar caches the act's days per year, and
    days cached before a test (by an earlier one) would hide what the test is about."""
    return load(ROOT / "processes" / "shared" / "closing_days.json")[0]


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ).astimezone(timezone.utc)


def due(start: str, term: str, move: bool = False) -> str:
    return cal().deadline(local(start), parse_term(term), move).astimezone(LOCAL_TZ).isoformat(timespec="minutes")


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
    assert cal().reason(date.fromisoformat(day)) == why


@pytest.mark.parametrize("day", ["2025-04-28", "2026-04-02", "2026-05-13", "2026-05-18", "2026-12-24", "2026-05-06"])
def test_ordinary_weekdays_are_working_days(day: str) -> None:
    assert cal().is_working_day(date.fromisoformat(day))


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


def test_a_term_ends_at_the_same_moment_whether_its_start_is_given_in_dutch_time_or_utc() -> None:
    """A diagram's deadline() starts from the Dutch clock; a task's due date and the tests
    from UTC. Days are elapsed time either way (a boundary timer P14D falls with it)."""
    for start, term in [("2026-03-20T10:00", "P14D"),  # summer time begins meanwhile
                        ("2027-03-10T23:43", "P60D"),  # late evening: 60 x 24 h later is Monday 00:43
                        ("2026-10-20T09:00", "P14D"),  # winter time begins meanwhile
                        ("2026-01-31T10:00", "P1M")]:
        for move in (False, True):
            utc = cal().deadline(local(start), parse_term(term), move)
            dutch = cal().deadline(local(start).astimezone(LOCAL_TZ), parse_term(term), move)
            assert dutch == utc, (start, term, move)
    # the one that moved a day before: Sunday 9 May 23:43 would have moved to the end of Monday
    assert due("2027-03-10T23:43", "P60D", move=True) == "2027-05-10T00:43+02:00"


def test_a_calendar_term_ending_on_a_holiday_moves_to_the_next_working_day_when_the_policy_says_so() -> None:
    # 14 days from 20 March 2026 is Good Friday; Easter Monday follows the weekend: Tuesday
    assert due("2026-03-20T10:00", "P14D", move=True) == "2026-04-08T00:00+02:00"
    # King's Day celebrated on Saturday 26 April 2025, Sunday 27: Monday 28 April is a working day
    assert due("2025-04-12T10:00", "P14D", move=True) == "2025-04-29T00:00+02:00"
    # a term ending on a working day does not move
    assert due("2026-03-24T10:00", "P14D", move=True) == "2026-04-07T11:00+02:00"


def test_reminders_and_further_terms_count_working_days_back_and_forth() -> None:
    end = local("2026-04-08T00:00")  # end of Tuesday after Easter
    remind = cal().before(end, parse_term("2 werkdagen"))
    # Tuesday and Thursday 2 April are the two working days before it (Good Friday, Easter Monday skipped)
    assert remind.astimezone(LOCAL_TZ).isoformat(timespec="minutes") == "2026-04-02T00:00+02:00"
    later = cal().after(local("2026-05-13T09:00"), parse_term("2 werkdagen"))
    assert local_date(later) == date(2026, 5, 19)  # Ascension, equated Friday, weekend skipped
    assert cal().after(local("2026-05-13T09:00"), parse_term("P2D")) == local("2026-05-15T09:00")


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


# -- the calendar over the years (issue 14: as sharp as money) ----------------------------------
@pytest.mark.parametrize(("day", "why"), [
    ("2031-04-26", "King's Day"),   # 27 April 2031 is a Sunday: the Saturday before
    ("2031-04-27", "Sunday"),
    ("2036-04-26", "King's Day"),   # 2036 too
    ("2027-04-27", "King's Day"),   # a Tuesday
    ("2027-05-05", "Liberation Day (5 May, every year)"),  # a Wednesday, not a lustrum year
    ("2030-05-05", "Liberation Day (5 May, every year)"),  # a lustrum year, on a Sunday
    ("2027-05-06", "Ascension Day"),
    ("2027-05-07", "equated by Royal decree: vrijdag na Hemelvaartsdag"),
    ("2027-03-26", "Good Friday"),
    ("2027-03-29", "Easter Monday"),
    ("2027-05-17", "Whit Monday"),
    ("2027-01-01", "New Year's Day"),
])
def test_the_act_s_days_in_other_years(day: str, why: str) -> None:
    assert cal().reason(date.fromisoformat(day)) == why


@pytest.mark.parametrize("day", ["2031-04-28", "2027-04-26", "2027-05-04", "2027-03-25", "2027-05-10", "2027-03-30"])
def test_the_days_around_them_are_working_days(day: str) -> None:
    assert cal().reason(date.fromisoformat(day)) is None and cal().is_working_day(date.fromisoformat(day))


@pytest.mark.parametrize(("day", "expected"), [
    ("2026-11-29", "2026-11-30"),  # a Sunday: the Monday
    ("2026-11-30", "2026-11-30"),  # a working day: itself
    ("2026-05-05", "2026-05-06"),  # 5 May (a Tuesday): the Wednesday
    ("2026-05-14", "2026-05-18"),  # Ascension, the equated Friday, the weekend: Monday
    ("2026-12-31", "2027-01-04"),  # the office's closing day, New Year's Day, the weekend
    ("2025-04-26", "2025-04-28"),  # King's Day on the Saturday, then Sunday
])
def test_the_next_working_day(day: str, expected: str) -> None:
    assert cal().next_working_day(date.fromisoformat(day)) == date.fromisoformat(expected)


@pytest.mark.parametrize(("day", "n", "expected"), [
    ("2026-11-27", 1, "2026-11-30"),    # Friday + 1: Monday
    ("2026-11-30", -1, "2026-11-27"),   # Monday - 1: Friday
    ("2026-11-30", 0, "2026-11-30"),
    ("2026-04-07", -1, "2026-04-02"),   # Tuesday after Easter - 1: Maundy Thursday
    ("2026-04-01", 3, "2026-04-08"),    # Wednesday + 3 across Easter: Thursday, Tuesday, Wednesday
    ("2026-05-19", -3, "2026-05-12"),   # back across the equated Friday and Ascension
])
def test_working_days_count_forward_and_back(day: str, n: int, expected: str) -> None:
    assert cal().shift(date.fromisoformat(day), n) == date.fromisoformat(expected)


def test_a_term_ends_with_its_last_day_or_the_next_working_day() -> None:
    assert cal().term_end(date(2026, 11, 27)) == local("2026-11-28T00:00")  # a Friday: its own end
    assert cal().term_end(date(2026, 11, 28)) == local("2026-12-01T00:00")  # a Saturday: end of Monday
    # 5 May 2027 (Wednesday), Ascension, the equated Friday, the weekend: the end of Monday 10 May
    assert cal().term_end(date(2027, 5, 5)) == local("2027-05-11T00:00")


@pytest.mark.parametrize(("start", "term", "expected"), [
    ("2026-12-15T10:00", "P1M", "2027-01-15T10:00+01:00"),   # across the year
    ("2026-03-15T10:00", "P1M", "2026-04-15T10:00+02:00"),   # months keep the Dutch clock time
    ("2026-01-31T10:00", "P1Y1M", "2027-02-28T10:00+01:00"),
    ("2028-01-31T10:00", "P1M", "2028-02-29T10:00+01:00"),   # a leap year
    ("2026-11-02T10:00", "P2W", "2026-11-16T10:00+01:00"),
    ("2026-11-02T10:00", "PT4H30M", "2026-11-02T14:30+01:00"),
    ("2026-11-02T10:00", "PT45S", "2026-11-02T10:00+01:00"),  # shown to the minute
    ("2026-11-02T10:00", "P1DT2H", "2026-11-03T12:00+01:00"),
    ("2026-11-02T10:00", "p3d", "2026-11-05T10:00+01:00"),
])
def test_calendar_terms(start: str, term: str, expected: str) -> None:
    assert due(start, term) == expected


def test_calendar_terms_back_keep_the_dutch_clock_time() -> None:
    assert cal().before(local("2027-01-15T10:00"), parse_term("P1M")) == local("2026-12-15T10:00")
    assert cal().before(local("2026-04-15T10:00"), parse_term("P1M")) == local("2026-03-15T10:00")
    assert cal().before(local("2026-03-31T10:00"), parse_term("P1M")) == local("2026-02-28T10:00")
    assert cal().before(local("2026-11-05T10:00"), parse_term("P3D")) == local("2026-11-02T10:00")
    assert cal().after(local("2026-11-02T10:00"), parse_term("PT45S")) == local("2026-11-02T10:00:45")


def test_working_day_steps_keep_the_clock_time_across_summer_time() -> None:
    # summer time began on Sunday 29 March 2026: Friday 09:00 + 1 working day is Monday 09:00
    assert cal().after(local("2026-03-27T09:00"), parse_term("1 werkdag")) == local("2026-03-30T09:00")
    assert cal().before(local("2026-03-30T09:00"), parse_term("1 werkdag")) == local("2026-03-27T09:00")
    assert cal().before(local("2026-11-30T09:00"), parse_term("P0D")) == local("2026-11-30T09:00")


@pytest.mark.parametrize(("text", "days"), [
    ("10 werkdagen", 10), ("1 werkdag", 1), (" 3 Werkdagen ", 3), ("2 working days", 2),
    ("1 working day", 1), ("5 business days", 5), ("9999 werkdagen", 9999), ("4werkdagen", 4),
])
def test_working_day_terms_in_dutch_and_english(text: str, days: int) -> None:
    term = parse_term(text)
    assert (term.calendar, term.working_days) == (None, days)


@pytest.mark.parametrize("bad", ["10000 werkdagen", "P1DT", "P1D2H", "1 werkdagen extra", "PT1D"])
def test_more_terms_that_are_refused(bad: str) -> None:
    with pytest.raises(TermError) as caught:
        parse_term(bad)
    assert str(caught.value) == (f"{bad!r} is neither an ISO 8601 duration (P14D, PT4H, P1M) "
                                 f"nor a number of working days (10 werkdagen)")


def _file(tmp_path: Path, content: object) -> Path:
    (tmp_path / "shared").mkdir(exist_ok=True)
    path = tmp_path / "shared" / "closing_days.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_every_bad_entry_is_named_and_the_good_ones_still_count(tmp_path: Path) -> None:
    path = _file(tmp_path, {"$comment": "ours", "equated_days": {"date": "2027-05-07"}, "closing_days": [
        "2027-02-01", {"date": "2027-02-02", "name": 5}, {"date": "2027-02-03", "name": ""},
        {"name": "no date"}, {"date": "2027-02-05", "name": "heidag"}]})
    cal, problems = load(path)
    assert problems == [
        "equated_days: expected a list of {date, name}",
        'closing_days[0]: expected {"date": "YYYY-MM-DD", "name": "..."}',
        'closing_days[1]: expected {"date": "YYYY-MM-DD", "name": "..."}',
        'closing_days[2]: expected {"date": "YYYY-MM-DD", "name": "..."}',
        "closing_days[3]: None is not a date (YYYY-MM-DD)",
    ]
    assert cal.closing == {date(2027, 2, 5): "heidag"} and cal.equated == {}
    assert cal.reason(date(2027, 2, 5)) == "closing day: heidag"
    assert check_file(tmp_path) == [f"shared/closing_days.json: {p}" for p in problems]


def test_a_file_that_is_not_json_or_names_unknown_keys_is_refused(tmp_path: Path) -> None:
    _file(tmp_path, "{nope")
    [problem] = check_file(tmp_path)
    assert problem.startswith("shared/closing_days.json: not valid JSON: ")
    _file(tmp_path, {"equated_days": [], "feestdagen": [], "closing": []})
    assert check_file(tmp_path) == ["shared/closing_days.json: unknown key(s) ['closing', 'feestdagen']; "
                                    "expected equated_days, closing_days"]
    _file(tmp_path, [{"date": "2027-02-05", "name": "heidag"}])  # a bare list: not silently nothing
    assert check_file(tmp_path) == ["shared/closing_days.json: expected an object with equated_days "
                                    "and/or closing_days"]
    _file(tmp_path, {"equated_days": [{"date": "2027-05-07", "name": "vrijdag na Hemelvaartsdag"}]})
    cal, problems = load(tmp_path / "shared" / "closing_days.json")
    assert problems == [] and cal.reason(date(2027, 5, 7)) == "equated by Royal decree: vrijdag na Hemelvaartsdag"
    assert check_file(tmp_path / "elsewhere") == []  # no file: the act's days only


def test_a_closing_day_the_office_adds_counts_at_once(tmp_path: Path) -> None:
    path = _file(tmp_path, {"closing_days": []})
    assert calendar(tmp_path).is_working_day(date(2027, 2, 5))
    _file(tmp_path, {"closing_days": [{"date": "2027-02-05", "name": "heidag"}]})
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9, path.stat().st_mtime_ns + 10**9))
    assert calendar(tmp_path).reason(date(2027, 2, 5)) == "closing day: heidag"
    assert calendar(tmp_path / "elsewhere").is_working_day(date(2027, 2, 5))


def test_a_server_with_a_dutch_locale_still_knows_the_act_s_days(monkeypatch: pytest.MonkeyPatch) -> None:
    """The holidays package names days in the locale's language unless told otherwise; the
    act's days are matched by their English names, so a server set to Dutch must not lose them."""
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.setenv(variable, "nl_NL.UTF-8")
    assert cal().reason(date(2026, 12, 25)) == "Christmas Day"
    assert cal().reason(date(2026, 4, 27)) == "King's Day"
    assert cal().reason(date(2026, 5, 14)) == "Ascension Day"
