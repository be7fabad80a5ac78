"""Process analytics for process owners and the office: per process and version, how long each
step takes (p50/p90), how often it is done on time, where cases wait (per group) and how long
whole cases take, over a period. The figures come from the engine (certflow.engine.analytics);
this module only reads the filter and turns figures into charts and tables.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certflow import i18n
from certflow.engine.analytics import LEAD_TIME_BOUNDS, VersionFigures
from certflow.i18n import N_
from certflow.localtime import end_of_day, local_date, start_of_day
from certflow.services.accounts import ROLE_LABELS
from certflow.web.deps import actor_of, get_engine
from certflow.web.schema_forms import pick
from certflow.web.pages import charts
from certflow.web.pages.dashboard import Office
from certflow.web.pages.deps import visitor_of
from certflow.web.pages.rendering import render

router = APIRouter()
DEFAULT_DAYS = 90
MAX_DAYS = 3660
# The years a period may fall in: the first and last days the calendar knows (0001-01-01,
# 9999-12-31) overflow when turned into Amsterdam time, and no case is older than this.
YEARS = (1900, 2999)
PRESETS = ((30, N_("Last 30 days")), (90, N_("Last 90 days")), (365, N_("Last 12 months")))
PREFERRED = "certification"


def _period(params: dict[str, str], today: date) -> tuple[date, date, dict[str, str]]:
    """The period asked for (both days included), or the default with the errors found."""
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for name, default in (("from", today - timedelta(days=DEFAULT_DAYS - 1)), ("to", today)):
        text = params.get(name, "").strip()
        try:
            days[name] = date.fromisoformat(text) if text else default
            if not YEARS[0] <= days[name].year <= YEARS[1]:
                raise ValueError(text)  # 0001-01-01 or 9999-12-31 overflow in local time
        except ValueError:
            errors[name] = N_("Enter a date as day, month and year, for example 2026-03-15.")
            days[name] = default
    if not errors and days["to"] < days["from"]:
        errors["to"] = N_("The end date must be on or after the start date.")
    elif not errors and (days["to"] - days["from"]).days >= MAX_DAYS:
        errors["from"] = N_("Choose a period of at most ten years.")
    return days["from"], days["to"], errors


@router.get("/analytics")
def analytics(request: Request, account: Office) -> Response:
    engine = get_engine()
    actor = actor_of(account)
    language = visitor_of(request).language
    params = dict(request.query_params)
    today = local_date(engine.now())
    start, end, errors = _period(params, today)
    processes = engine.analytics_processes(actor)
    ids = [p for p, _ in processes]
    process_id = params.get("process") or (PREFERRED if PREFERRED in ids else (ids[0] if ids else ""))
    if process_id and process_id not in ids:
        errors["process"] = N_("Choose a process from the list.")
    figures = None
    if process_id and not errors:
        figures = engine.process_analytics(actor, process_id, start_of_day(start), end_of_day(end))
    values = {"process": process_id, "from": start.isoformat(), "to": end.isoformat()}
    return render(request, "analytics/analytics.html", {
        "errors": errors, "values": values, "figures": figures,
        "options": [(p, pick(name, language)) for p, name in processes],
        "process_name": pick(figures.name, language) if figures else "",
        "presets": [(n, label, (today - timedelta(days=n - 1)).isoformat(), today.isoformat()) for n, label in PRESETS],
        "versions": [_version_view(v, language) for v in figures.versions] if figures else [],
        "start": start, "end": end, "today": today,
        "dur": lambda s: charts.duration(s, language), "percent": charts.percent,
        "group_label": lambda g: _group(g, language), "step_name": lambda n: pick(n, language),
    }, status_code=400 if errors else 200)


def _group(group: str | None, language: str) -> str:
    return i18n.gettext(language, ROLE_LABELS.get(group or "", group or N_("No group")))


def _version_view(v: VersionFigures, language: str) -> dict[str, Any]:
    t = i18n.translations(language).gettext
    return {"v": v, "cycle": _cycle_chart(v, language, t), "on_time": _on_time_chart(v, language, t),
            "wait": _wait_chart(v, language, t), "lead": _lead_chart(v, language, t),
            "lead_rows": [(bucket_label(bound, language), n) for bound, n in v.lead_histogram]}


def _cycle_chart(v: VersionFigures, language: str, t: Any) -> charts.Chart | None:
    if not v.steps:
        return None
    top = max(s.p90 for s in v.steps)
    unit, tick = charts.duration_unit(top, language)
    rows = [charts.Row(pick(s.name, language), [charts.Bar([(s.p50, "bar-a")], "p50 " + charts.duration(s.p50, language)),
                                charts.Bar([(s.p90, "bar-b")], "p90 " + charts.duration(s.p90, language))])
            for s in v.steps]
    return charts.hbar_chart(
        f"chart-cycle-{v.version}", t(N_("Cycle time per step")),
        t(N_("For each step, the time from the task entering the queue to its completion: half of the tasks "
             "took at most p50, nine in ten at most p90.")),
        rows, top, tick, legend=[("bar-a", t(N_("p50 (median)"))), ("bar-b", t(N_("p90")))], unit=unit)


def _on_time_chart(v: VersionFigures, language: str, t: Any) -> charts.Chart | None:
    dated = [s for s in v.steps if s.with_due]
    if not dated:
        return None
    rows = [charts.Row(pick(s.name, language), [charts.Bar(
        [(s.on_time / s.with_due, "bar-a"), (1 - s.on_time / s.with_due, "bar-late")],
        t(N_("%(share)s (%(n)s of %(total)s)")) % {
            "share": charts.percent(s.on_time_share), "n": s.on_time, "total": s.with_due})])
        for s in dated]
    return charts.hbar_chart(
        f"chart-ontime-{v.version}", t(N_("Done within the due date")),
        t(N_("For each step with a due date, the share of its tasks done on time and (hatched) done late.")),
        rows, 1.0, lambda x: charts.percent(x), legend=[("bar-a", t(N_("on time"))), ("bar-late", t(N_("late")))])


def _wait_chart(v: VersionFigures, language: str, t: Any) -> charts.Chart | None:
    if not v.groups:
        return None
    top = max(g.total for g in v.groups)
    unit, tick = charts.duration_unit(top, language)
    rows = [charts.Row(_group(g.group, language), [charts.Bar(
        [(g.waited, "bar-a"), (g.open_waiting, "bar-b")], charts.duration(g.total, language))])
        for g in v.groups]
    return charts.hbar_chart(
        f"chart-wait-{v.version}", t(N_("Where cases wait")),
        t(N_("For each group, the time cases spent waiting for it: tasks done in the period plus the tasks "
             "still open now. The longest bar is where cases wait longest.")),
        rows, top, tick, legend=[("bar-a", t(N_("done tasks"))), ("bar-b", t(N_("still open")))], unit=unit)


def _lead_chart(v: VersionFigures, language: str, t: Any) -> charts.Chart | None:
    if not v.finished:
        return None
    columns = [(bucket_label(bound, language), float(n), str(n)) for bound, n in v.lead_histogram]
    return charts.column_chart(
        f"chart-lead-{v.version}", t(N_("Finished cases by lead time")),
        t(N_("How many cases that finished in the period took how long from start to end.")), columns)


def bucket_label(bound: float | None, language: str) -> str:
    """'< 1 day', '1–7 days', ... for the histogram bucket ending at ``bound``."""
    t = i18n.translations(language).gettext
    labels = [N_("under 1 day"), N_("1–7 days"), N_("1–4 weeks"), N_("1–3 months"), N_("3–6 months"),
              N_("6–12 months"), N_("over a year")]
    index = len(LEAD_TIME_BOUNDS) if bound is None else LEAD_TIME_BOUNDS.index(bound)
    return t(labels[index])

