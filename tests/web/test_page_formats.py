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


def test_case_values_read_as_words_dates_and_names() -> None:
    """What a task's case data and the monitor show for a stored value."""
    from certflow.web.pages.labels import shown_value

    assert shown_value("valid_until", "2029-12-02", "nl") == "2 december 2029"
    assert shown_value("valid_until", "2029-12-02", "en") == "2 December 2029"
    assert shown_value("period_from", "2026-02-30", "nl") == "2026-02-30"  # no such day: as stored
    assert shown_value("eligibility_route", "evc", "en") == "An EVC (recognition of prior learning) at HBO level"
    assert shown_value("candidate", "cas", "nl", {"cas": "Cas de Vries"}) == "Cas de Vries (cas)"
    assert shown_value("candidate", "ann", "nl", {"cas": "Cas de Vries"}) == "ann"  # not known: as stored
    assert shown_value("remarks", "cas", "nl", {"cas": "Cas de Vries"}) == "cas"  # not a person variable
    assert shown_value("hours_spent", 35, "nl") == 35
