"""The public Register Loopbaanprofessional: anyone may search it by name or register number.
It shows name, register number, status, level/specialisation and valid-until; nothing else."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certflow.i18n import N_
from certflow.services.register import public_register
from certflow.store.db import session_scope
from certflow.web.pages.rendering import render

router = APIRouter()

PAGE_SIZE = 50
STATUS_LABELS = {
    "valid": N_("Valid"), "recertification_running": N_("Recertification running"),
    "lapsed": N_("Lapsed"), "suspended": N_("Suspended"), "withdrawn": N_("Withdrawn"),
}
LEVEL_LABELS = {"RL": N_("Career professional")}


@router.get("/register")
def register_page(request: Request, q: str = "") -> Response:
    query = q.strip()[:100]
    with session_scope() as session:
        rows = public_register(session, query, limit=PAGE_SIZE + 1) if query else []
    return render(request, "register/search.html", {
        "q": query, "rows": rows[:PAGE_SIZE], "more": len(rows) > PAGE_SIZE,
        "searched": bool(query), "status_labels": STATUS_LABELS,
        "level_labels": LEVEL_LABELS,
    })
