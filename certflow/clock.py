"""The one clock. Every "now" in certflow — engine timers, due dates, scheduler, handlers,
audit — comes from here.

In production it is UTC wall time. Where it is allowed (tests, the embedded demo) it can be
moved forward; the offset lives in the database (``clock_offset``) so web, worker and beat,
which are separate processes, agree on what time it is. Each process re-reads the offset at
the start of every unit of work (``refresh``; an advance reads it with its instance lock,
``OFFSET_COLUMN``), so a move is seen everywhere within one advance or one scheduler tick,
without a read on every call.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.store.models import ClockOffset

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


_READ_OFFSET = select(ClockOffset.__table__.c.offset_seconds).where(ClockOffset.__table__.c.id == 1)
# The offset as one more column of a statement a unit of work runs anyway (an advance's lock
# of its instance row): the same read as ``refresh``, without a statement of its own.
OFFSET_COLUMN = _READ_OFFSET.scalar_subquery().label("clock_offset")


class ClockError(ValueError):
    pass


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0

    @property
    def offset(self) -> timedelta:
        return timedelta(seconds=self._offset)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self._offset)

    def refresh(self, session: Session) -> None:
        # A Core read on the session's connection, not ``session.get``: it runs at the start of
        # every unit of work (each advance), where the ORM's identity-map load cost more than
        # the rest of the clock. An offset moved in this session is already in ``_offset``.
        self.refreshed(session.connection().execute(_READ_OFFSET).scalar())

    def refreshed(self, value: float | None) -> None:
        """Take the offset read by a statement that selected ``OFFSET_COLUMN``."""
        self._offset = float(value) if value is not None else 0.0

    def advance(self, session: Session, by: timedelta, *, allowed: bool) -> datetime:
        """Move the shared clock forward. Never backwards: timers already fired stay fired."""
        if not allowed:
            raise ClockError("this clock cannot be moved (CERTFLOW_CLOCK_CONTROLLABLE is off)")
        if by <= timedelta(0):
            raise ClockError("the clock only moves forward")
        row = session.execute(
            select(ClockOffset).where(ClockOffset.id == 1).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            row = ClockOffset(id=1, offset_seconds=0.0)
            session.add(row)
        row.offset_seconds += by.total_seconds()
        self._offset = row.offset_seconds
        return self.now()


def parse_duration(text: str) -> timedelta:
    """``P30D``, ``PT2H``, ``P1DT12H`` → timedelta (days and smaller; months vary in length)."""
    match = _DURATION.match(text.strip().upper())
    if not match or not any(match.groupdict().values()):
        raise ClockError(f"not an ISO 8601 duration in days/hours/minutes/seconds: {text!r}")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


CLOCK = Clock()
