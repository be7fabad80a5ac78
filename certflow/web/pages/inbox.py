"""The inbox: the office's daily work and everyone's tasks (mentor, assessor, committee,
certifier, supervisor), in the manner of Camunda Tasklist.

The list (task, process, case, due, assignee) sits on the left, the selected task on the right:
its form on top (drawn from the task's JSON Schema), the case context the task's ``show`` list
allows below, then the case's documents. Filters are a GET form (bookmarkable; htmx swaps only
the workspace); they can be saved and shared with a group. Claim, unclaim, assign and delegate
are one-click forms; with htmx the redirect that follows them swaps the workspace in place.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from certflow.engine.dto import TaskView
from certflow.engine.errors import CertflowError, NotFound
from certflow.engine.inbox_filters import InboxFilter
from certflow.i18n import N_, gettext
from certflow.services import case_documents as documents
from certflow.services import accounts, saved_filters
from certflow.store.db import session_scope
from certflow.services.accounts import Account
from certflow.web import schema_forms
from certflow.web.deps import PathId, actor_of, get_engine
from certflow.web.pages import labels
from certflow.web.pages.deps import form_lists, form_values, require_role, visitor_of
from certflow.web.pages.nav import CANDIDATE_ROLES, WORK_ROLES
from certflow.web.pages import task_forms
from certflow.web.pages.rendering import render
from certflow.web.text_input import whole_number

router = APIRouter()
Worker = Annotated[Account, Depends(require_role(*WORK_ROLES))]
FILTER_FIELDS = ("process_id", "element_id", "group", "scope", "overdue", "due_within_days", "candidate")
PAGE_SIZE = 50
STALE = task_forms.STALE


def _filter_of(params: dict[str, str], account: Account) -> tuple[InboxFilter, dict[str, str], int | None]:
    """The filter in force: a saved one (``?filter=id``) or the query's fields."""
    saved_id = whole_number(params.get("filter", ""))
    if saved_id is not None:
        with session_scope() as session:
            criteria = saved_filters.get(session, actor_of(account), saved_id).criteria
        flt = InboxFilter.from_dict(criteria)
        return flt, {k: str(v) for k, v in flt.to_dict().items()}, saved_id
    values = {k: params.get(k, "") for k in FILTER_FIELDS if params.get(k)}
    return InboxFilter.from_dict(values), values, None


def _query(values: dict[str, Any], **extra: Any) -> str:
    merged = {**{k: v for k, v in values.items() if v not in (None, "")}, **extra}
    return "?" + urlencode(merged) if merged else ""


def _workspace(request: Request, account: Account, task_id: str | None = None,
               panel: dict[str, Any] | None = None, status_code: int = 200,
               flash: str | None = None) -> Response:
    engine = get_engine()
    params = dict(request.query_params)
    errors: dict[str, str] = {}
    try:
        flt, values, saved_id = _filter_of(params, account)
    except CertflowError as exc:
        flt, values, saved_id = InboxFilter(), {}, None
        errors[str(exc.details.get("field", "filter"))] = exc.message
    paging = _paging(params)
    try:
        page = engine.inbox_page(actor_of(account), filters=flt, limit=paging.get("limit", PAGE_SIZE),
                                 after=paging.get("after"))
    except CertflowError as exc:  # a cursor or size from an edited or stale URL: start over
        errors[str(exc.details.get("field", "after"))] = exc.message
        paging = {}
        page = engine.inbox_page(actor_of(account), filters=flt, limit=PAGE_SIZE)
    tasks = page.tasks
    task_id = task_id or params.get("task")
    if panel is None and task_id:
        panel = _panel(account, task_id)
        # A task one may not see (or that is gone) is answered as such, not 200: the list
        # still shows, the panel says why, and no case data is in it.
        status_code = panel.get("status", status_code)
    holders = [t.assignee for t in tasks]
    if panel and panel.get("task") is not None:
        holders.append(panel["task"].assignee)
    language = visitor_of(request).language
    with session_scope() as session:
        saved = saved_filters.visible(session, actor_of(account))
        names = accounts.display_names(session, holders)  # who holds a task, by name: one read
        assignable = _assignable(session, account, tasks, language)
    return render(request, "inbox/inbox.html", {
        "tasks": tasks, "values": values, "errors": errors, "saved": saved,
        "saved_id": saved_id, "options": _options(engine.inbox_choices(actor_of(account)), account,
                            language), "panel": panel, "assignable": assignable,
        "selected": task_id, "query": _query(values, **paging), "account": account, "names": names,
        "limit": paging.get("limit", PAGE_SIZE), "paged": "after" in paging,
        "next_url": "/inbox" + _query(values, **{**paging, "after": page.next}) if page.next else None,
        "first_url": "/inbox" + _query(values, **{k: v for k, v in paging.items() if k != "after"}),
        "notice": flash or (N_("The task is done.") if params.get("done") else None),
    }, status_code=_status(request, status_code))


def _assignable(session: Session, account: Account, tasks: list[TaskView],
                language: str) -> list[tuple[str, str]]:
    """Whom the bulk assignment can give the listed tasks to, by name, as (username, label):
    the members of their groups, as handing one task over offers its group's (the engine
    assigns a task only within its group). Not for candidate groups: too many people, and a
    candidate's task is the candidate's own. With tasks of several groups the label says
    which of them each person is in."""
    if not account.is_staff:
        return []
    groups = sorted({t.candidate_group for t in tasks
                     if t.candidate_group and t.candidate_group not in CANDIDATE_ROLES})
    found: dict[str, tuple[str, list[str]]] = {}
    for group in groups:
        for username, name in accounts.members(session, group):
            found.setdefault(username, (name, []))[1].append(gettext(language, labels.group_label(group)))
    people = sorted(found.items(), key=lambda item: (item[1][0].casefold(), item[0]))
    if len(groups) == 1:
        return [(username, name) for username, (name, _) in people]
    return [(username, f"{name} ({', '.join(words)})") for username, (name, words) in people]


def _paging(params: dict[str, str]) -> dict[str, Any]:
    """Which page of the list: ``after`` (the cursor the previous page gave) and ``limit``."""
    paging: dict[str, Any] = {}
    if params.get("after"):
        paging["after"] = params["after"][:500]
    limit = whole_number(params.get("limit", ""))
    if limit is not None:
        paging["limit"] = limit
    return paging


def _status(request: Request, status_code: int) -> int:
    """htmx swaps only 2xx answers; a refusal must still replace the workspace (it says what
    went wrong), so htmx requests get 200 and the message, others the real status."""
    return 200 if request.headers.get("HX-Request") and status_code >= 400 else status_code


def _options(choices: dict[str, Any], account: Account, language: str) -> dict[str, list[tuple[str, str]]]:
    def process(p: str) -> str:
        return gettext(language, labels.process_label(p))

    def group(g: str) -> str:
        return gettext(language, labels.group_label(g))

    return {
        "process": [(p, process(p)) for p in choices["processes"]],
        "task": [(t["element_id"], f"{t['name']} ({process(t['process_id'])})") for t in choices["tasks"]],
        "group": [(g, group(g)) for g in choices["groups"]],
        "share": [(r, group(r)) for r in account.roles],
    }


def _panel(account: Account, task_id: str, values: dict[str, Any] | None = None,
           errors: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    """The selected task: form, context and documents; or why it cannot be shown."""
    try:
        task = get_engine().task(actor_of(account), task_id)
    except CertflowError as exc:
        return {"task": None, "message": message or exc.message, "status": exc.status}
    return _panel_of(account, task, values, errors, message)


def _panel_of(account: Account, task: TaskView, values: dict[str, Any] | None,
              errors: dict[str, str] | None, message: str | None) -> dict[str, Any]:
    may_hand_over = account.is_staff or (task.assignee == account.username and not task.personal)
    colleagues: list[tuple[str, str]] = []
    with session_scope() as session:
        try:
            docs = documents.for_case(session, actor_of(account), task.instance_id)
        except CertflowError:
            docs = []
        if may_hand_over and task.candidate_group and task.candidate_group not in CANDIDATE_ROLES:
            # Whom to hand it to, by name (not candidates: too many).
            colleagues = [(u, n) for u, n in accounts.members(session, task.candidate_group) if u != task.assignee]
    return {
        **task_forms.form_of(task, account, values, errors), "task": task, "message": message,
        "context": context_rows(task, account.language), "colleagues": colleagues,
        "documents": docs,
        "may_complete": task.assignee == account.username,
        "may_claim": task.assignee is None,
        # A task the diagram gives to a person is never released to the group (staff
        # reassign it), and its holder cannot delegate it: no buttons that can only be refused.
        "may_release": task.assignee is not None and not task.personal
        and (task.assignee == account.username or account.is_staff),
        "may_hand_over": may_hand_over,
    }


@lru_cache(maxsize=64)
def _labels(process_id: str, language: str) -> dict[str, str]:
    # Per process and language, for the life of the process: labels change with a deploy,
    # and a stale label is harmless (the value shown is always the task's own).
    return schema_forms.field_labels(get_engine().definition_source(process_id)["forms"], language)


def context_rows(task: TaskView, language: str) -> list[tuple[str, Any]]:
    """The task's case context with the labels the process's forms give its variables (else
    labels.py's words for them), its values as a person reads them (labels.shown_value: a
    choice's words, a date, a person's name)."""
    if not task.context:
        return []
    titles = _labels(task.process_id, language)
    people = [v for k, v in task.context.items() if k in labels.PERSON_VARIABLES and isinstance(v, str)]
    names: dict[str, str] = {}
    if people:
        with session_scope() as session:
            names = accounts.display_names(session, people)
    return [(titles.get(k) or _word(labels.VARIABLE_LABELS.get(k), language) or schema_forms.humanise(k),
             labels.shown_value(k, v, language, names)) for k, v in task.context.items()]


def _word(label: str | None, language: str) -> str | None:
    return gettext(language, label) if label else None


@router.get("/inbox")
def inbox(request: Request, account: Worker) -> Response:
    return _workspace(request, account)


@router.get("/inbox/tasks/{task_id}")
def task_page(request: Request, task_id: str, account: Worker) -> Response:
    return _workspace(request, account, task_id)


def _back(request: Request, task_id: str | None = None, **extra: str) -> Response:
    """Back to the inbox (same filters); 303, which htmx follows and swaps in place."""
    query = dict(request.query_params)
    if task_id:
        query["task"] = task_id
    query.update(extra)
    return RedirectResponse("/inbox" + _query(query), status_code=303)


@router.post("/inbox/tasks/{task_id}/{action}")
async def task_action(request: Request, task_id: str, action: str, account: Worker) -> Response:
    engine, actor = get_engine(), actor_of(account)
    form = await form_values(request)
    try:
        if action == "claim":
            engine.claim(actor, task_id)
        elif action == "unclaim":
            engine.unclaim(actor, task_id)
        elif action == "assign":
            engine.assign(actor, task_id, form.get("assignee", ""))
        elif action == "delegate":
            engine.delegate(actor, task_id, form.get("assignee", ""))
        elif action == "complete":
            return await _complete(request, account, task_id)
        else:
            raise NotFound(f"no action {action!r}")
    except CertflowError as exc:
        message = exc.message
        try:
            engine.task(actor, task_id)
        except NotFound:
            message = STALE  # completed or cancelled by someone else while the page was open
        panel = _panel(account, task_id, message=message)
        return _workspace(request, account, task_id, panel=panel, status_code=exc.status)
    return _back(request, task_id)


async def _complete(request: Request, account: Account, task_id: str) -> Response:
    sent = await task_forms.submit(request, account, task_id)
    if sent.done:
        return _back(request, None, done="1")
    if sent.stale or sent.task is None:
        return _workspace(request, account, panel={"task": None, "message": STALE}, status_code=409)
    panel = _panel_of(account, sent.task, sent.data, sent.errors, None)
    return _workspace(request, account, task_id, panel=panel, status_code=422)


@router.post("/inbox/assign")
async def bulk_assign(request: Request, account: Worker) -> Response:
    lists = await form_lists(request)
    assignee = (lists.get("assignee") or [""])[0].strip()
    try:
        outcomes = get_engine().assign_many(actor_of(account), lists.get("task_ids", []), assignee)
    except CertflowError as exc:
        return _workspace(request, account, panel={"task": None, "message": exc.message},
                          status_code=exc.status)
    refused = [o for o in outcomes if not o.ok]
    panel = {"task": None, "bulk": outcomes, "message": None if not refused else N_(
        "Some tasks could not be assigned; see the list below.")}
    return _workspace(request, account, panel=panel, flash=None if refused else N_("The tasks are assigned."))


@router.post("/inbox/filters")
async def save_filter(request: Request, account: Worker) -> Response:
    form = await form_values(request)
    criteria = {k: form.get(k, "") for k in FILTER_FIELDS}
    try:
        checked = InboxFilter.from_dict(criteria).to_dict()
        with session_scope() as session:
            view = saved_filters.save(session, actor_of(account), form.get("name", ""), checked,
                                      form.get("shared_group") or None)
    except CertflowError as exc:
        panel = {"task": None, "message": exc.message}
        return _workspace(request, account, panel=panel, status_code=exc.status)
    return RedirectResponse(f"/inbox?filter={view.id}", status_code=303)


@router.post("/inbox/filters/{filter_id}/delete")
def delete_filter(request: Request, filter_id: PathId, account: Worker) -> Response:
    with session_scope() as session:
        saved_filters.delete(session, actor_of(account), filter_id)
    return RedirectResponse("/inbox", status_code=303)


@router.get("/documents/{document_id}")
def download_document(document_id: str, account: Annotated[Account, Depends(require_role(
        *WORK_ROLES, "candidate", "professional"))]) -> Response:
    with session_scope() as session:
        view, content = documents.download(session, actor_of(account), document_id)
    return Response(content, media_type=view.content_type, headers={
        "Content-Disposition": attachment(view.filename), "X-Content-Type-Options": "nosniff"})


def attachment(filename: str) -> str:
    """A download header that survives any file name (RFC 6266: ASCII fallback + UTF-8)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
