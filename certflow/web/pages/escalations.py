"""The escalation inbox: what escalated to my group (coordinator, office manager), why and since
when, with the history of reminders; reassign, extend the due date (with a reason) or take the
task over, each in one step. Below, the overdue tasks not (yet) escalated, for a look ahead.

The facade decides who may (``Engine.escalations``/``escalation_*``); these routes translate
forms and show refusals field by field.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from certflow.engine.dto import EscalationView, TaskView
from certflow.engine.errors import CertflowError, InvalidInput
from certflow.i18n import N_
from certflow.services.accounts import Account
from certflow.web.deps import actor_of, get_engine
from certflow.web.pages.deps import field_errors, form_values, require_role
from certflow.web.pages.rendering import redirect, render

router = APIRouter(prefix="/escalations")
ESCALATION_ROLES = ("coordinator", "office_manager")
Coordinator = Annotated[Account, Depends(require_role(*ESCALATION_ROLES))]
OVERDUE_LIMIT = 50

STEPS = {
    "escalation_reminder": N_("Reminder sent"),
    "task_escalated": N_("Escalated"),
    "escalation_reassigned": N_("Reassigned"),
    "escalation_extended": N_("Due date extended"),
    "escalation_taken_over": N_("Taken over"),
}
FLASHES = {
    "reassigned": N_("The task is reassigned; it has left the escalation inbox."),
    "extended": N_("The due date is extended; it has left the escalation inbox."),
    "taken_over": N_("The task is yours now; find it in your inbox."),
}
ACTIONS = {"reassign": "reassigned", "extend": "extended", "take-over": "taken_over"}


@router.get("")
def escalation_inbox(request: Request, account: Coordinator, done: str = "") -> Response:
    engine, actor = get_engine(), actor_of(account)
    escalated = engine.escalations(actor)
    return render(request, "escalations/list.html", {
        "escalated": escalated, "overdue": _overdue(account, {e.task.id for e in escalated}),
        "flash": FLASHES.get(done), "steps": STEPS,
    })


def _overdue(account: Account, escalated: set[str]) -> list[TaskView]:
    """Past-due open tasks not escalated to me, soonest due first: every lane for staff,
    my groups' otherwise (the inbox's own rules)."""
    engine, actor = get_engine(), actor_of(account)
    groups = engine.inbox_choices(actor)["groups"] if account.is_staff else list(account.roles)
    seen: dict[str, TaskView] = {}
    for group in groups:
        for task in engine.inbox_page(actor, group=group, overdue=True, limit=OVERDUE_LIMIT).tasks:
            if task.id not in escalated:
                seen.setdefault(task.id, task)
    return sorted(seen.values(), key=lambda t: (t.due_at is None, t.due_at))[:OVERDUE_LIMIT]


def _page(request: Request, account: Account, item: EscalationView,
          values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
          form: str = "", status_code: int = 200) -> Response:
    return render(request, "escalations/task.html", {
        "item": item, "task": item.task, "steps": STEPS, "values": values or {},
        "errors": errors or {}, "open_form": form,
        # Only someone of the task's group takes it over (the engine refuses anyone else):
        # the form is not offered to a coordinator outside it, who reassigns instead.
        "may_take_over": item.task.candidate_group in account.roles or form == "take-over",
    }, status_code=status_code)


@router.get("/{task_id}")
def escalation_page(request: Request, task_id: str, account: Coordinator) -> Response:
    return _page(request, account, _item(account, task_id))


def _item(account: Account, task_id: str) -> EscalationView:
    """The escalated task; one resolved meanwhile (by me, a colleague) shows as no longer
    escalated, without actions, when I may see it."""
    engine, actor = get_engine(), actor_of(account)
    try:
        return engine.escalation(actor, task_id)
    except InvalidInput:
        task = engine.task(actor, task_id)
        return EscalationView(task, None, None, "", task.escalation_level, task.next_escalation_at)


@router.post("/{task_id}/{action}")
async def resolve(request: Request, task_id: str, action: str, account: Coordinator) -> Response:
    engine, actor = get_engine(), actor_of(account)
    form = await form_values(request)
    # Each form has its own reason field (one page, three forms: no two fields share an id).
    reason = form.get({"reassign": "reassign_reason", "take-over": "take_over_reason"}.get(
        action, "reason"), "")[:1000]
    errors: dict[str, str] = {}
    try:
        if action == "reassign":
            if not form.get("assignee"):
                errors["assignee"] = N_("Enter the username of the person who takes the task over.")
            else:
                engine.escalation_reassign(actor, task_id, form["assignee"][:100], reason)
        elif action == "extend":
            if not form.get("due"):
                errors["due"] = N_("Enter a new due date or a term, such as 5 werkdagen.")
            if not reason.strip():
                errors["reason"] = N_("Say why the due date moves; it is kept in the case history.")
            if not errors:
                engine.escalation_extend(actor, task_id, form["due"][:40], reason)
        elif action == "take-over":
            engine.escalation_take_over(actor, task_id, reason)
        else:
            return render(request, "errors/not_found.html", status_code=404)
    except CertflowError as exc:
        if exc.status in (403, 404) and not exc.details.get("field"):
            raise  # not my task to handle, or no such task: the error page
        errors = _errors_of(exc, action)
    if errors:
        item = _item(account, task_id)
        return _page(request, account, item, form, errors, action, status_code=422)
    return redirect(request, f"/escalations?done={ACTIONS[action]}")


def _errors_of(exc: CertflowError, action: str) -> dict[str, Any]:
    default = {"reassign": "assignee", "extend": "due", "take-over": "take_over_reason"}.get(action, "reason")
    return field_errors(exc, str(exc.details.get("field") or default))
