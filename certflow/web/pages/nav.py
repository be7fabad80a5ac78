"""The menu in the page header, by role, and where each person lands after signing in.

Add a page to the menu by adding a ``NavItem`` to ``NAV`` (labels marked with ``N_``).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from certflow.engine.monitor import MONITOR_ROLES
from certflow.i18n import N_
from certflow.roles import CASE_DATA_ROLES
from certflow.services.accounts import Account

WORK_ROLES = ("office", "coordinator", "office_manager", "mentor", "assessor", "committee", "certifier",
              "supervisor", "process_owner", "admin")
CANDIDATE_ROLES = ("candidate", "professional")
# The office and process owners: the dashboard and the process analytics.
OFFICE_ROLES = ("office", "coordinator", "office_manager", "process_owner", "admin")


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    # Shown to anyone holding one of these roles; None: to every signed-in person;
    # () : to everyone, signed in or not.
    roles: tuple[str, ...] | None = None


NAV: list[NavItem] = [
    NavItem(N_("Inbox"), "/inbox", WORK_ROLES),
    NavItem(N_("Escalations"), "/escalations", ("coordinator", "office_manager")),
    # Payers and amounts: the staff who see case data (certflow.web.pages.payments).
    NavItem(N_("Payments"), "/payments", CASE_DATA_ROLES),
    NavItem(N_("My CMI"), "/mijn", CANDIDATE_ROLES),
    NavItem(N_("Dashboard"), "/dashboard", OFFICE_ROLES),
    NavItem(N_("People"), "/admin/people", ("admin", "office", "coordinator")),
    NavItem(N_("Studio"), "/studio", ("process_owner",)),
    NavItem(N_("Monitor"), "/monitor", MONITOR_ROLES),
    NavItem(N_("Public register"), "/register", ()),
    NavItem(N_("My account"), "/account", None),
]


def _routed(request: Request | None, url: str) -> bool:
    """Only menu entries whose page exists in this app (pages land one by one)."""
    if request is None:
        return True
    return any(getattr(route, "path", None) == url for route in request.app.router.routes)


def menu(account: Account | None, request: Request | None = None) -> list[NavItem]:
    items = []
    for item in NAV:
        if item.roles == ():
            visible = True
        elif account is None:
            visible = False
        else:
            visible = item.roles is None or account.has_role(*item.roles)
        if visible and _routed(request, item.url):
            items.append(item)
    return items


def home_url(account: Account, request: Request | None = None) -> str:
    """Staff and assessors land in their inbox, candidates in Mijn CMI."""
    for url, roles in (("/inbox", WORK_ROLES), ("/mijn", CANDIDATE_ROLES)):
        if account.has_role(*roles) and _routed(request, url):
            return url
    return "/account"
