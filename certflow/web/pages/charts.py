"""Server-rendered SVG charts: the geometry of a bar chart computed here, drawn by
``templates/macros/charts.html`` (no JavaScript, nothing from a CDN).

A chart is rectangles and texts in a fixed coordinate system (the SVG's viewBox scales it to
the page). Each chart carries its title and description for screen readers; the page puts a
table with the same figures under it, so no figure exists only as a length or a colour.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from certflow import i18n
from certflow.i18n import N_

WIDTH = 800
LABEL_WIDTH = 250
PLOT_WIDTH = 390
BAR_HEIGHT = 16
BAR_GAP = 4
ROW_GAP = 14
AXIS_HEIGHT = 28
MAX_LABEL = 34


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    tip: str = ""


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    css: str = ""
    anchor: str = "start"
    tip: str = ""


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    height: float
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[tuple[float, float, float, float]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    width: float = WIDTH
    top_margin: float = 12


@dataclass(frozen=True)
class Bar:
    """One bar: stacked (value, css class) segments and the text printed after it."""

    segments: Sequence[tuple[float, str]]
    text: str


@dataclass(frozen=True)
class Row:
    label: str
    bars: Sequence[Bar]


def nice_axis(value: float, most_ticks: int = 5) -> tuple[float, float]:
    """The axis end and tick step for values up to ``value``: the step is 1, 2 or 5 x 10^k
    (so every tick reads as a round number), the end the first step at or above ``value``."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / most_ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power * (1 + 1e-9) >= raw)
    return step * math.ceil(value / step - 1e-9), step


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"


def hbar_chart(chart_id: str, title: str, description: str, rows: Sequence[Row], axis_max: float,
               tick_label: Callable[[float], str], legend: Sequence[tuple[str, str]] = (), unit: float = 1.0,
               whole: bool = False) -> Chart:
    """Horizontal bars, one group of bars per row, against an axis from 0 to at least
    ``axis_max``, ticked at round numbers of ``unit`` (a duration axis ticks in hours or days;
    ``whole``: counts, ticked at whole numbers)."""
    top_units, step_units = nice_axis(axis_max / unit)
    if whole and step_units < 1:
        top_units, step_units = math.ceil(top_units), 1.0
    top, step = top_units * unit, step_units * unit
    scale = PLOT_WIDTH / top
    rects, texts, lines = [], [], []
    y = 0.0
    for row in rows:
        height = len(row.bars) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
        texts.append(Text(LABEL_WIDTH - 10, y + height / 2 + 5, _short(row.label), "chart-label", "end", row.label))
        for i, bar in enumerate(row.bars):
            x, by = float(LABEL_WIDTH), y + i * (BAR_HEIGHT + BAR_GAP)
            for value, css in bar.segments:
                width = max(0.0, min(value, top)) * scale
                if width > 0:
                    rects.append(Rect(x, by, max(width, 1.5), BAR_HEIGHT, css, bar.text))
                x += width
            texts.append(Text(x + 6, by + BAR_HEIGHT - 3, bar.text, "chart-value"))
        y += height + ROW_GAP
    plot_bottom = max(y - ROW_GAP, 0) + 6
    for n in range(round(top / step) + 1):
        value = n * step
        x = LABEL_WIDTH + value * scale
        lines.append((x, -4.0, x, plot_bottom))
        texts.append(Text(x, plot_bottom + 18, tick_label(value), "chart-tick", "middle"))
    return Chart(chart_id, title, description, plot_bottom + AXIS_HEIGHT, rects, texts, lines, list(legend))


def column_chart(chart_id: str, title: str, description: str, columns: Sequence[tuple[str, float, str]],
                 css: str = "bar-a") -> Chart:
    """Vertical bars (a histogram): (label under the bar, value, text above it)."""
    plot_height, left, width = 150.0, 40.0, WIDTH - 60.0
    top = max((v for _, v, _ in columns), default=0) or 1.0
    slot = width / max(len(columns), 1)
    rects, texts, lines = [], [], [(left, plot_height, left + width, plot_height)]
    for i, (label, value, text) in enumerate(columns):
        height = plot_height * value / top
        x = left + i * slot + slot * 0.15
        if height > 0:  # the tallest bar's figure sits in the chart's top margin
            rects.append(Rect(x, plot_height - height, slot * 0.7, height, css, f"{label}: {text}"))
        texts.append(Text(x + slot * 0.35, plot_height - height - 6, text, "chart-value", "middle"))
        texts.append(Text(x + slot * 0.35, plot_height + 20, label, "chart-tick", "middle"))
    return Chart(chart_id, title, description, plot_height + 30, rects, texts, lines, [], top_margin=24)


# -- durations as people read them ---------------------------------------------------------------
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def duration(seconds: float | None, language: str) -> str:
    """'45 min', '5 u 20 min', '3,5 dagen' (English: '5 h 20 min', '3.5 days'); '' for None."""
    if seconds is None:
        return ""
    t = i18n.translations(language).gettext
    if seconds < MINUTE:
        return t(N_("under a minute"))
    if seconds < HOUR:
        return t(N_("%(n)s min")) % {"n": int(seconds // MINUTE)}
    if seconds < 2 * DAY:
        hours, minutes = int(seconds // HOUR), int(seconds % HOUR // MINUTE)
        text = t(N_("%(n)s h")) % {"n": hours}
        return text + (" " + t(N_("%(n)s min")) % {"n": minutes} if minutes and hours < 10 else "")
    days = seconds / DAY
    shown = f"{days:.1f}" if days < 10 else f"{days:.0f}"
    if language == "nl":
        shown = shown.replace(".", ",")
    return t(N_("%(n)s days")) % {"n": shown}


def duration_unit(max_seconds: float, language: str) -> tuple[float, Callable[[float], str]]:
    """The unit a duration axis ticks in (minutes, hours or days) and its tick labeller."""
    t = i18n.translations(language).gettext
    if max_seconds <= 2 * HOUR:
        unit, text = MINUTE, N_("%(n)s min")
    elif max_seconds <= 3 * DAY:
        unit, text = HOUR, N_("%(n)s h")
    else:
        unit, text = DAY, N_("%(n)s d")

    def label(value: float) -> str:
        shown = f"{value / unit:g}"
        return t(text) % {"n": shown.replace(".", ",") if language == "nl" else shown}

    return unit, label


def percent(share: float | None) -> str:
    """'80%'; a dash when there is nothing to divide by."""
    return "–" if share is None else f"{share * 100:.0f}%"
