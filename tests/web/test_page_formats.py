"""Dates, times and amounts on the pages read as a Dutch (or English) reader expects."""

from __future__ import annotations

from datetime import date, datetime, timezone

from certflow.web.pages.formats import date_time, long_date, money


def test_dutch_and_english_formats() -> None:
    assert long_date(date(2029, 3, 15)) == "15 maart 2029"
    assert long_date("2029-03-15", "en") == "15 March 2029"
    assert long_date(None) == ""
    assert money("786.5") == "€ 786,50" and money(1234.5, "en") == "€1,234.50"
    assert money(None) == ""


def test_moments_are_shown_in_amsterdam_time() -> None:
    late = datetime(2029, 3, 15, 23, 30, tzinfo=timezone.utc)  # already 16 March in Utrecht
    assert long_date(late) == "16 maart 2029"
    assert date_time(late) == "16 maart 2029 00:30"
    assert date_time(datetime(2029, 7, 1, 12, 0, tzinfo=timezone.utc), "en") == "1 July 2029 14:00"
