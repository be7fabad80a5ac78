"""Dutch (and English) formats for the pages: dates as "15 maart 2029", money as "€ 786,50",
times in Europe/Amsterdam. The Jinja filters ``date``, ``datetime`` and ``money`` use these
with the page's language; letters and pages format alike (certflow.services.email)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from certflow.services import email

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def local(value: datetime) -> datetime:
    """A moment as the clock on the office wall shows it (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(AMSTERDAM)


def _moment(value: datetime | str) -> datetime:
    return local(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


def long_date(value: date | datetime | str | None, language: str = "nl") -> str:
    """'15 maart 2029' / '15 March 2029'; a moment is dated in Amsterdam; '' for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime) or (isinstance(value, str) and len(value) > 10):
        value = _moment(value).date()
    return email.long_date(value, language)


def date_time(value: datetime | str | None, language: str = "nl") -> str:
    """'15 maart 2029 14:05' in Amsterdam time."""
    if value is None or value == "":
        return ""
    moment = _moment(value)
    return f"{email.long_date(moment.date(), language)} {moment:%H:%M}"


def money(value: Any, language: str = "nl") -> str:
    """'€ 1.234,50' in Dutch, '€1,234.50' in English; '' for None."""
    if value is None or value == "":
        return ""
    return email.money(value, language)


def in_fours(code: str | None) -> str:
    """``NL91 ABNA 0417 1643 00``, ``5000 0567 8901 2345``: an IBAN or a payment reference in
    groups of four, as banks print them and people type them over."""
    compact = (code or "").replace(" ", "")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
