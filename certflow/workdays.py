"""Working days under the Dutch general time-limits act (Algemene termijnenwet), and terms.

A working day is a day that is not a Saturday, a Sunday, a day of art. 3 of the act, a day
equated with those by Royal decree, or one of the organisation's own closing days. Art. 3 lists
New Year's Day, Good Friday, Easter Monday, Ascension Day, Whit Monday, Christmas and Boxing
Day, the day the King's birthday is celebrated, and 5 May (every year).

The ``holidays`` package's NL calendar is the base, but it is not that list: it has 5 May only
in lustrum years and Easter and Whit Sunday besides, and it cannot know the equated days or
our own closing days. So this module takes from it only the art. 3 days it knows (by name),
adds 5 May every year, and reads the rest as data from ``processes/shared/closing_days.json``
(a file process owners edit: each Royal decree's equated days, e.g. the Friday after Ascension,
and the office's own closing days).

A term is a calendar duration (``P14D``, ``PT4H``, ``P1M``) or a number of working days
(``10 werkdagen``, ``1 werkdag``, ``10 working days``). A working-day term runs through the
end of its last working day, Dutch time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from calendar import monthrange
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import holidays
from certflow.i18n import Message, N_
from certflow.localtime import at_local_time, end_of_day, local_date, to_local

CALENDAR_FILE = Path("shared") / "closing_days.json"
# The art. 3 days as the holidays package names them (language en_US); 5 May is added apart.
ART3_NAMES = frozenset({
    "New Year's Day", "Good Friday", "Easter Monday", "Ascension Day", "Whit Monday",
    "Christmas Day", "Second Day of Christmas", "King's Day",
})
_WORKING = re.compile(r"^(\d{1,4})\s*(werkdag|werkdagen|working days?|business days?)$", re.I)
_ISO = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$", re.I)


class TermError(ValueError):
    pass


@dataclass(frozen=True)
class Term:
    """A calendar duration (``calendar``; ``working_days`` None) or ``working_days`` working days
    (``calendar`` None)."""

    calendar: tuple[int, timedelta] | None  # (months, the rest: weeks, days, hours...)
    working_days: int | None

    def add_to(self, instant: datetime, sign: int = 1) -> datetime:
        """Calendar terms only. Weeks, days and less are elapsed time, as in the diagram's
        timers (a task due ``P14D`` and a boundary timer ``P14D`` fall together, also across a
        change of summer time); months count on the Dutch calendar (31 January + P1M is the
        last day of February)."""
        assert self.calendar is not None
        months, rest = self.calendar
        # In UTC: an aware Dutch time plus a timedelta is wall-clock arithmetic in Python (14
        # days across the change to summer time would be an hour short of 14 x 24 hours).
        instant = instant.astimezone(timezone.utc)
        if months:
            local = to_local(instant)  # the same Dutch clock time that many months on
            year, month0 = divmod(local.year * 12 + local.month - 1 + sign * months, 12)
            day = min(local.day, monthrange(year, month0 + 1)[1])
            instant = local.replace(year=year, month=month0 + 1, day=day).astimezone(timezone.utc)
        return instant + sign * rest


def parse_term(text: str) -> Term:
    """``P14D``, ``PT2H``, ``P1M`` (calendar) or ``10 werkdagen`` / ``10 working days``."""
    cleaned = str(text).strip()
    match = _WORKING.match(cleaned)
    if match:
        return Term(None, int(match.group(1)))
    match = _ISO.match(cleaned)
    if match and any(match.groupdict().values()) and not cleaned.upper().endswith("T"):
        parts = {k: int(v) for k, v in match.groupdict().items() if v}
        months = parts.pop("years", 0) * 12 + parts.pop("months", 0)
        return Term((months, timedelta(**parts)), None)  # weeks, days and less: timedelta's own
    raise TermError(Message(N_("%(term)r is neither an ISO 8601 duration (P14D, PT4H, P1M) "
                               "nor a number of working days (10 werkdagen)"), term=text))


@dataclass
class Calendar:
    """Which Dutch days are not working days, and why."""

    equated: dict[date, str] = field(default_factory=dict)
    closing: dict[date, str] = field(default_factory=dict)
    _years: dict[int, dict[date, str]] = field(default_factory=dict, repr=False)

    def _legal(self, year: int) -> dict[date, str]:
        if year not in self._years:
            days = {d: n for d, n in holidays.country_holidays("NL", years=year, language="en_US").items() if n in ART3_NAMES}
            days[date(year, 5, 5)] = "Liberation Day (5 May, every year)"
            self._years[year] = days
        return self._years[year]

    def reason(self, day: date) -> str | None:
        """Why ``day`` is not a working day (None when it is one)."""
        legal = self._legal(day.year).get(day)
        if legal:
            return legal
        if day in self.equated:
            return f"equated by Royal decree: {self.equated[day]}"
        if day in self.closing:
            return f"closing day: {self.closing[day]}"
        if day.weekday() >= 5:
            return "Saturday" if day.weekday() == 5 else "Sunday"
        return None

    def is_working_day(self, day: date) -> bool:
        return self.reason(day) is None

    def next_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, else the first one after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def shift(self, day: date, working_days: int) -> date:
        """The ``n``-th working day after ``day`` (before it for a negative ``n``)."""
        step = 1 if working_days >= 0 else -1
        for _ in range(abs(working_days)):
            day += timedelta(days=step)
            while not self.is_working_day(day):
                day += timedelta(days=step)
        return day

    # -- terms on instants ---------------------------------------------------------------------
    def deadline(self, start: datetime, term: Term, move_to_working_day: bool) -> datetime:
        """When a term that starts at ``start`` ends. A working-day term ends at the end of its
        last working day; a calendar term at the same moment later, or, with
        ``move_to_working_day`` (the act's rule for terms set for candidates), at the end of the
        next working day when it ends on a day that is not one."""
        if term.working_days is not None:
            return end_of_day(self.shift(local_date(start), term.working_days))
        due = term.add_to(start)
        if move_to_working_day and not self.is_working_day(local_date(due)):
            return self.term_end(local_date(due))
        return due

    def term_end(self, last_day: date) -> datetime:
        """The end of a term whose last day is ``last_day`` (Dutch midnight after it), or, when
        that day is not a working day, the end of the next working day: the act's rule for a
        term that ends on a Saturday, Sunday or holiday (Algemene termijnenwet, art. 1)."""
        return end_of_day(self.next_working_day(last_day))

    def before(self, instant: datetime, term: Term) -> datetime:
        """``term`` before ``instant`` (a reminder ahead of a due time), same Dutch clock time."""
        if term.working_days is not None:
            return at_local_time(self.shift(local_date(instant), -term.working_days), instant)
        return term.add_to(instant, -1)

    def after(self, instant: datetime, term: Term) -> datetime:
        """``term`` after ``instant`` (a further escalation), same Dutch clock time."""
        if term.working_days is not None:
            return at_local_time(self.shift(local_date(instant), term.working_days), instant)
        return term.add_to(instant)


# -- the data file ------------------------------------------------------------------------------
def read_days(data: dict[str, Any], key: str, problems: list[str]) -> dict[date, str]:
    days: dict[date, str] = {}
    entries = data.get(key, [])
    if not isinstance(entries, list):
        problems.append(Message(N_("%(key)s: expected a list of {date, name}"), key=key))
        return days
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            problems.append(Message(N_('%(key)s[%(n)s]: expected {"date": "YYYY-MM-DD", "name": "..."}'),
                                    key=key, n=n))
            continue
        try:
            days[date.fromisoformat(str(entry.get("date")))] = entry["name"]
        except ValueError:
            problems.append(Message(N_("%(key)s[%(n)s]: %(value)r is not a date (YYYY-MM-DD)"), key=key, n=n,
                                    value=entry.get("date")))
    return days


def load(path: Path) -> tuple[Calendar, list[str]]:
    """The calendar from a closing-days file (a missing file: the act's days only)."""
    if not path.exists():
        return Calendar(), []
    problems: list[str] = []
    try:
        data = json.loads(path.read_bytes())  # UTF-8 (json detects it)
    except json.JSONDecodeError as exc:
        return Calendar(), [Message(N_("not valid JSON: %(error)s"), error=str(exc))]
    if not isinstance(data, dict):  # a bare list of days would otherwise count for nothing, silently
        return Calendar(), [Message(N_("expected an object with equated_days and/or closing_days"))]
    unknown = set(data) - {"$comment", "equated_days", "closing_days"}
    if unknown:
        problems.append(Message(N_("unknown key(s) %(keys)s; expected equated_days, closing_days"),
                                keys=str(sorted(unknown))))
    return Calendar(read_days(data, "equated_days", problems), read_days(data, "closing_days", problems)), problems


def check_file(processes_dir: Path) -> list[str]:
    """Deploy-time check of the closing-days file, as ``file: problem`` lines."""
    return [Message("%(file)s: %(problem)s", file=str(CALENDAR_FILE), problem=p)
            for p in load(processes_dir / CALENDAR_FILE)[1]]


def calendar(processes_dir: Path) -> Calendar:
    """The organisation's calendar, re-read when the file changes."""
    path = processes_dir / CALENDAR_FILE
    stamp = path.stat().st_mtime_ns if path.exists() else None
    return _cached(path, stamp)


@lru_cache(maxsize=4)
def _cached(path: Path, stamp: int | None) -> Calendar:
    return load(path)[0]
