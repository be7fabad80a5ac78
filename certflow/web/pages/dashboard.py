"""The office dashboard: what needs attention today, each number a link to the list behind it.

Open and overdue tasks per group (links into the inbox's filters), tasks escalated to a group,
incidents, unpaid invoices, payments waiting for the office (/payments) and certificates that expire within four months (their lists are
here too: /dashboard/invoices, /dashboard/certificates). Every figure is one aggregate query
(certflow.engine.analytics, certflow.services.office_figures), never a walk over cases.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from certflow import i18n
from certflow.engine.analytics import GroupQueue
from certflow.i18n import N_
from certflow.localtime import local_date
from certflow.roles import sees_case_data
from certflow.services import office_figures, payment_queue
from certflow.services.accounts import ROLE_LABELS, Account
from certflow.store.db import session_scope
from certflow.web.deps import actor_of, get_engine
from certflow.web.pages import charts
from certflow.web.pages.deps import require_role, visitor_of
from certflow.web.pages.nav import OFFICE_ROLES
from certflow.web.pages.rendering import render

router = APIRouter()
Office = Annotated[Account, Depends(require_role(*OFFICE_ROLES))]


def routed(request: Request, path: str) -> bool:
    """Whether this app serves ``path`` (the monitor lands separately)."""
    return any(getattr(route, "path", None) == path for route in request.app.router.routes)


@router.get("/dashboard")
def dashboard(request: Request, account: Office) -> Response:
    engine = get_engine()
    actor = actor_of(account)
    now = engine.now()
    today = local_date(now)
    queues = engine.queue_figures(actor)
    debtors = sees_case_data(actor)  # who owes, who paid: not a process owner's to see
    with session_scope() as session:
        owed = office_figures.receivables(session, actor, today)
        expiring = office_figures.expiring_count(session, actor, today)
        payments = payment_queue.waiting_count(session, actor) if debtors else None
    return render(request, "dashboard/dashboard.html", {
        "now": now, "queues": queues, "owed": owed, "expiring": expiring, "payments": payments,
        "months": office_figures.EXPIRY_WINDOW_MONTHS,
        "debtors": debtors,
        "monitor": "/monitor" if routed(request, "/monitor") else None,
        "chart": _queue_chart(queues.groups, visitor_of(request).language),
    })


def _queue_chart(groups: list[GroupQueue], language: str) -> charts.Chart:
    t = i18n.translations(language).gettext
    rows = [charts.Row(t(ROLE_LABELS.get(g.group, g.group or N_("No group"))), [charts.Bar(
        [(g.overdue, "bar-late"), (g.open - g.overdue, "bar-a")],
        t(N_("%(open)s open, %(late)s overdue")) % {"open": g.open, "late": g.overdue})])
        for g in groups if g.open]
    top = max((g.open for g in groups), default=0)
    return charts.hbar_chart(
        "chart-queues", t(N_("Open and overdue tasks per group")),
        t(N_("Each bar is a group's open tasks; the hatched part is overdue. The table below has the same figures.")),
        rows, top, lambda v: f"{v:g}", whole=True,
        legend=[("bar-late", t(N_("overdue"))), ("bar-a", t(N_("not overdue")))])


@router.get("/dashboard/invoices")
def unpaid_invoices(request: Request, account: Office) -> Response:
    engine = get_engine()
    overdue = request.query_params.get("overdue") in ("1", "true", "on")
    with session_scope() as session:
        rows = office_figures.unpaid_invoices(session, actor_of(account), local_date(engine.now()), overdue)
    return render(request, "dashboard/invoices.html", {
        "invoices": rows, "overdue": overdue, "total": sum((i.amount for i in rows), Decimal("0.00")), "limit": office_figures.MAX_LIST,
        "people": routed(request, "/admin/people/{username}") and account.has_role("admin", "office", "coordinator"),
    })


@router.get("/dashboard/certificates")
def expiring_certificates(request: Request, account: Office) -> Response:
    engine = get_engine()
    with session_scope() as session:
        rows = office_figures.expiring_certificates(session, actor_of(account), local_date(engine.now()))
    return render(request, "dashboard/certificates.html", {
        "entries": rows, "months": office_figures.EXPIRY_WINDOW_MONTHS, "limit": office_figures.MAX_LIST,
        "people": routed(request, "/admin/people/{username}") and account.has_role("admin", "office", "coordinator"),
    })
