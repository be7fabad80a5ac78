"""Dutch local time: the one home of ``Europe/Amsterdam`` in certflow.

Stored times are UTC; people, diagrams, invoices and legal terms think in Dutch calendar days.
Everything that turns an instant into a Dutch date or back (an invoice's issue date, the day a
certificate ends, the working day a term ends on) goes through here, so summer time and the
day boundary at midnight are handled in one place.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Europe/Amsterdam")


def to_local(instant: datetime) -> datetime:
    """An instant as Dutch wall-clock time (naive instants are taken as UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(LOCAL_TZ)


def local_date(instant: datetime) -> date:
    """The Dutch calendar day an instant falls on (23:30 UTC on 31 December is 1 January)."""
    return to_local(instant).date()


def start_of_day(day: date) -> datetime:
    """Midnight at the start of a Dutch calendar day, as a UTC instant."""
    return datetime.combine(day, time(0), LOCAL_TZ).astimezone(timezone.utc)


def end_of_day(day: date) -> datetime:
    """The end of a Dutch calendar day (= midnight starting the next one), as a UTC instant:
    a term that runs "through" a day ends here."""
    return start_of_day(day + timedelta(days=1))


def at_local_time(day: date, like: datetime) -> datetime:
    """``day`` at the Dutch wall-clock time of ``like``, as a UTC instant (keeps 09:00 at 09:00
    across a change to or from summer time)."""
    return datetime.combine(day, to_local(like).timetz().replace(tzinfo=None), LOCAL_TZ).astimezone(timezone.utc)


def at_clock(day: date, clock: time) -> datetime:
    """``day`` at the Dutch wall-clock time ``clock``, with the offset Amsterdam has on that day
    (+01:00 in winter, +02:00 in summer): 09:00 stays 09:00 all year. A time the change to
    summer time skips (02:30 on the last Sunday of March) is read with the winter offset."""
    return datetime.combine(day, clock.replace(tzinfo=None), LOCAL_TZ)
