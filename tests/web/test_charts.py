"""The SVG chart helper: round axis ticks, bars to scale, durations as people read them."""

from __future__ import annotations

import pytest

from certflow.web.pages import charts


@pytest.mark.parametrize("value, expected", [
    (1.0, (1.0, 0.2)), (3, (3.0, 1.0)), (7, (8.0, 2.0)), (55.5, (60.0, 20.0)), (100, (100.0, 20.0)),
    (0, (1.0, 0.25)), (26, (30.0, 10.0)),
])
def test_axis_ends_on_a_round_tick(value: float, expected: tuple[float, float]) -> None:
    assert charts.nice_axis(value) == pytest.approx(expected)


def test_bars_are_drawn_to_scale_with_their_figures() -> None:
    hours = 3600.0
    unit, label = charts.duration_unit(26 * hours, "nl")
    chart = charts.hbar_chart("c", "Doorlooptijd", "uitleg", [
        charts.Row("Stap A", [charts.Bar([(13 * hours, "bar-a")], "13 u")]),
        charts.Row("Stap B", [charts.Bar([(26 * hours, "bar-a")], "26 u")]),
    ], 26 * hours, label, unit=unit)
    a, b = chart.rects
    assert b.width == pytest.approx(2 * a.width)
    assert b.width == pytest.approx(charts.PLOT_WIDTH * 26 / 30)  # axis 0..30 h in steps of 10
    ticks = [t.text for t in chart.texts if t.css == "chart-tick"]
    assert ticks == ["0 u", "10 u", "20 u", "30 u"]
    assert {"13 u", "26 u", "Stap A"} <= {t.text for t in chart.texts}


def test_counts_tick_at_whole_numbers() -> None:
    chart = charts.hbar_chart("c", "t", "d", [charts.Row("x", [charts.Bar([(1, "bar-a")], "1")])], 1,
                              lambda v: f"{v:g}", whole=True)
    assert [t.text for t in chart.texts if t.css == "chart-tick"] == ["0", "1"]


@pytest.mark.parametrize("seconds, nl, en", [
    (30, "minder dan een minuut", "under a minute"), (45 * 60, "45 min", "45 min"),
    (5 * 3600 + 20 * 60, "5 u 20 min", "5 h 20 min"), (30 * 3600, "30 u", "30 h"),
    (3.5 * 86400, "3,5 dagen", "3.5 days"), (40 * 86400, "40 dagen", "40 days"), (None, "", ""),
])
def test_durations(seconds: float | None, nl: str, en: str) -> None:
    assert charts.duration(seconds, "nl") == nl
    assert charts.duration(seconds, "en") == en
