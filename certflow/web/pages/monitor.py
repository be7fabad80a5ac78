"""The monitor (staff): every instance with filters, and one instance with its diagram (the
bpmn-js viewer marks where its tokens stand, the path it took and its open incidents), its
timeline, its data, and the operations on it: retry or skip an incident, cancel, and move it
to the newest version of its process. Who may do what is the facade's (certflow.engine.monitor):
the page only hides buttons a person could not use.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from certflow.engine.errors import CertflowError, InvalidInput
from certflow.engine.monitor import DATA_ROLES, MIGRATE_ROLES, MONITOR_ROLES, InstanceFilter
from certflow.i18n import N_
from certflow.services import accounts
from certflow.services.accounts import Account
from certflow.store.db import session_scope
from certflow.web import schema_forms
from certflow.web.deps import PathId, actor_of, get_engine
from certflow.web.pages.deps import form_values, require_role
from certflow.web.pages import labels as page_labels
from certflow.web.pages.rendering import redirect, render

router = APIRouter()
Staff = Annotated[Account, Depends(require_role(*MONITOR_ROLES))]
FILTER_FIELDS = ("process_id", "version", "status", "business_key", "candidate", "has_incident", "overdue")
MAX_REASON = 1000
# Variables every case has that no form names.
SYSTEM_LABELS = {"business_key": N_("Case number"), "started_by": N_("Started by"),
                 "candidate": N_("Candidate")}
FILTER_ERRORS = {
    "version": N_("Choose a process first, then one of its versions."),
    "status": N_("Choose a status from the list."),
    "after": N_("This page link no longer works; start again from the first page."),
}
# How the timeline names what happened (audit actions; element state changes are lower case).
ACTIONS = {
    "instance_started": N_("Case started"), "instance_completed": N_("Case finished"),
    "instance_cancelled": N_("Case cancelled"), "instance_migrated": N_("Moved to a new version"),
    "ready": N_("Opened"), "waiting": N_("Waiting"), "started": N_("Started"),
    "completed": N_("Done"), "cancelled": N_("Cancelled"), "error": N_("Failed"),
    "task_completed_by_user": N_("Completed by a person"), "claimed": N_("Claimed"),
    "unclaimed": N_("Released"), "assigned": N_("Assigned"), "delegated": N_("Delegated"),
    "service_completed": N_("Automatic step done"), "service_failed": N_("Automatic step failed"),
    "service_queued": N_("Queued to be sent; the case goes on"),
    "incident_opened": N_("Incident opened"), "incident_retried": N_("Incident retried"),
    "incident_skipped": N_("Incident skipped"), "message_received": N_("Message received"),
    "message_sent": N_("Message sent"), "service_deferred": N_("Automatic step failed; it is tried again"),
    "escalation_reminder": N_("Reminder sent"), "task_escalated": N_("Escalated"),
    "escalation_reassigned": N_("Reassigned after escalation"),
    "escalation_extended": N_("Due date extended"), "escalation_taken_over": N_("Taken over after escalation"),
}


def _query(values: dict[str, Any], **extra: Any) -> str:
    merged = {**{k: v for k, v in values.items() if v not in (None, "")}, **extra}
    return "?" + urlencode(merged) if merged else ""


def process_title(name: str, language: str) -> str:
    """A process's name in the page's language: diagrams are named "Dutch / English"."""
    parts = [p.strip() for p in name.split(" / ")]
    return parts[1] if language == "en" and len(parts) > 1 else parts[0]


def _candidate(value: str) -> str:
    """The username the office typed, or the one behind an e-mail address."""
    if "@" not in value:
        return value
    with session_scope() as session:
        user = accounts.by_email(session, value)
    return user.username if user is not None else value


def _names(usernames: set[str]) -> dict[str, str]:
    """username -> full name (the username itself for one that is not known), in one read."""
    with session_scope() as session:
        found = accounts.display_names(session, usernames)
    return {u: found.get(u, u) for u in usernames}


@router.get("/monitor")
def instances(request: Request, account: Staff) -> Response:
    engine, actor = get_engine(), actor_of(account)
    params = dict(request.query_params)
    values = {k: params[k].strip() for k in FILTER_FIELDS if params.get(k, "").strip()}
    errors: dict[str, str] = {}
    try:
        flt = InstanceFilter.from_dict({**values, **({"candidate": _candidate(values["candidate"])}
                                                     if values.get("candidate") else {})})
        found = engine.monitor_page(actor, flt, after=params.get("after") or None)
    except InvalidInput as exc:
        field = str(exc.details.get("field", "process_id"))
        errors[field] = FILTER_ERRORS.get(field, exc.message)
        found = engine.monitor_page(actor)
    choices = engine.monitor_choices(actor)
    versions = choices.get(values.get("process_id", ""), {}).get("versions", [])
    titles = {p: process_title(c["name"], account.language) for p, c in choices.items()}
    return render(request, "monitor/list.html", {
        "page": found, "values": values, "errors": errors, "query": _query(values),
        "names": _names({r.subject for r in found.rows if r.subject}),
        "process_options": sorted(((p, t) for p, t in titles.items()), key=lambda o: o[1].lower()),
        "titles": titles,
        "version_options": [(str(v), str(v)) for v in versions],
        "first_page": not params.get("after"),
    }, status_code=422 if errors else 200)


def _detail_page(request: Request, account: Account, instance_id: str, message: str | None = None,
                 errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                 notice: str | None = None, status_code: int = 200) -> Response:
    detail = get_engine().monitor_detail(actor_of(account), instance_id)
    labels = schema_forms.field_labels(get_engine().definition_source(
        detail.instance.process_id, detail.instance.version)["forms"], account.language)
    # What people entered (a form or a start form names it) first, in words; what the automatic
    # steps recorded (ids, job states, mail receipts) folded away as technical details.
    entered = [k for k in detail.data_keys if k in labels or k in SYSTEM_LABELS or k in page_labels.VARIABLE_LABELS]
    people = _names({v for k, v in (detail.data or {}).items()
                     if k in page_labels.PERSON_VARIABLES and isinstance(v, str)})
    subject = detail.instance.subject
    choice = get_engine().monitor_choices(actor_of(account)).get(detail.instance.process_id, {})
    return render(request, "monitor/instance.html", {
        "d": detail, "i": detail.instance,
        "title": process_title(str(choice.get("name") or detail.instance.process_id), account.language), "message": message, "errors": errors or {},
        "values": values or {}, "notice": notice, "actions": ACTIONS,
        "labels": {k: labels.get(k) or SYSTEM_LABELS.get(k) or page_labels.VARIABLE_LABELS.get(k)
                   or schema_forms.humanise(k) for k in detail.data_keys},
        "entered": entered, "technical": [k for k in detail.data_keys if k not in entered],
        "shown": {k: page_labels.shown_value(k, detail.data[k], account.language, people) for k in entered}
        if detail.data else {},
        "candidate_name": _names({subject}).get(subject, "") if subject else "",
        "may_migrate": account.has_role(*MIGRATE_ROLES),
        "sees_data": account.has_role(*DATA_ROLES),
        # As the engine's cancel: the staff who handle cases, or whoever started this one.
        "may_cancel": account.has_role(*DATA_ROLES) or detail.instance.started_by == account.username,
        "markers": {"active": detail.active, "done": detail.done, "incident": detail.incident_elements,
                    "refused": detail.migration.elements},
    }, status_code=status_code)


@router.get("/monitor/instances/{instance_id}")
def instance_page(request: Request, instance_id: str, account: Staff) -> Response:
    notice = {"retried": N_("The step is being tried again."), "skipped": N_("The step was skipped."),
              "cancelled": N_("The case is cancelled."),
              "migrated": N_("The case now runs on the newest version.")}.get(request.query_params.get("done", ""))
    return _detail_page(request, account, instance_id, notice=notice)


@router.get("/monitor/instances/{instance_id}/diagram.bpmn")
def diagram(instance_id: str, account: Staff) -> Response:
    xml = get_engine().diagram_xml(actor_of(account), instance_id)
    # Read by the viewer's fetch, never rendered: a diagram opened directly runs nothing.
    return Response(xml, media_type="application/xml", headers={
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"})


@router.post("/monitor/instances/{instance_id}/incidents/{incident_id}/{action}")
def incident(request: Request, instance_id: str, incident_id: PathId, action: str, account: Staff) -> Response:
    if action not in ("retry", "skip"):
        return _detail_page(request, account, instance_id, message=N_("Choose retry or skip."), status_code=422)
    try:
        outcome = get_engine().resolve_incident(actor_of(account), incident_id, action)
    except CertflowError as exc:
        return _detail_page(request, account, instance_id, message=exc.message, status_code=exc.status)
    return redirect(request, f"/monitor/instances/{instance_id}?done={outcome}")


@router.post("/monitor/instances/{instance_id}/cancel")
async def cancel(request: Request, instance_id: str, account: Staff) -> Response:
    form = await form_values(request)
    reason, errors = form.get("reason", ""), {}
    if not reason:
        errors["reason"] = N_("Say why the case is cancelled.")
    elif len(reason) > MAX_REASON:
        errors["reason"] = N_("Keep the reason under 1000 characters.")
    if form.get("confirm") != "yes":
        errors["confirm"] = N_("Tick the box to confirm that the case stops for good.")
    if errors:
        return _detail_page(request, account, instance_id, errors=errors, values=form, status_code=422)
    try:
        get_engine().cancel(actor_of(account), instance_id, reason)
    except CertflowError as exc:
        return _detail_page(request, account, instance_id, message=exc.message, status_code=exc.status)
    return redirect(request, f"/monitor/instances/{instance_id}?done=cancelled")


@router.post("/monitor/instances/{instance_id}/migrate")
async def migrate(request: Request, instance_id: str, account: Staff) -> Response:
    form = await form_values(request)
    try:
        get_engine().migrate_instance(actor_of(account), instance_id, form.get("migrate_reason", "")[:MAX_REASON])
    except CertflowError as exc:
        # A refusal naming elements is listed, in the page's language, under "Version".
        message = N_("The case was not moved: see why under Version.") if exc.details.get("elements") else exc.message
        return _detail_page(request, account, instance_id, message=message, status_code=exc.status)
    return redirect(request, f"/monitor/instances/{instance_id}?done=migrated")
