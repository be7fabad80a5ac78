"""Dutch (and English) formats for the pages: dates as "15 maart 2029", money as "€ 786,50",
times in Europe/Amsterdam. Jinja filters ``date``, ``datetime``, ``money`` use these with the
page's language."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MONTHS = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return local(value).date()
    if isinstance(value, date):
        return value
    text = str(value)
    if len(text) > 10:
        return local(datetime.fromisoformat(text)).date()
    return date.fromisoformat(text)


def local(value: datetime) -> datetime:
    """A moment as the clock on the office wall shows it (naive values are taken as UTC)."""
    if value.tzinfo is None:
        from datetime import timezone

        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(AMSTERDAM)


def long_date(value: date | datetime | str | None, language: str = "nl") -> str:
    """'15 maart 2029' / '15 March 2029'; an empty string for None."""
    if value is None or value == "":
        return ""
    day = _as_date(value)
    months = MONTHS.get(language, MONTHS["nl"])
    return f"{day.day} {months[day.month - 1]} {day.year}"


def date_time(value: datetime | str | None, language: str = "nl") -> str:
    """'15 maart 2029 14:05' in Amsterdam time."""
    if value is None or value == "":
        return ""
    moment = local(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))
    return f"{long_date(moment.date(), language)} {moment:%H:%M}"


def money(value: Any, language: str = "nl") -> str:
    """'€ 1.234,50' in Dutch, '€1,234.50' in English."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    if language == "en":
        return f"{sign}€{text}"
    return f"{sign}€ " + text.translate(str.maketrans(",.", ".,"))
