"""Mijn CMI: the candidate's own pages. Where my cases stand and what happens next, my tasks
(the dossier, answers to questions) with my documents, invoices, certificates, and my data
(newsletter, export, erasure). Applying and ordering live in mijn_apply.py.

A candidate uses this a few times in three years: every page says what it is for, what to do
next, and by when, in plain words; dates and amounts in Dutch format on Dutch pages.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from certflow.engine.dto import CaseProgress
from certflow.engine.errors import CertflowError, Conflict, NotFound
from certflow.i18n import N_, gettext
from certflow.services import case_documents as documents
from certflow.services import certificates as certificate_service
from certflow.services import my_data
from certflow.services.billing import views as billing_views
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.services.accounts import Account
from certflow.web.deps import actor_of, get_engine
from certflow.web.pages import task_forms
from certflow.web.pages.deps import form_lists, form_values, require_role, safe_next, visitor_of
from certflow.web.pages.inbox import attachment, context_rows
from certflow.web.pages.labels import PROCESS_NAMES, REFERENCE_PROCESSES, WAITING, outcome_label
from certflow.web.pages.nav import CANDIDATE_ROLES
from certflow.web.pages.rendering import render

router = APIRouter()
Candidate = Annotated[Account, Depends(require_role(*CANDIDATE_ROLES))]
UPLOAD_REFUSALS = {
    "TooLarge": N_("The file is larger than %(mb)s MB. Make it smaller (for example by saving it "
                   "as PDF) and upload it again."),
    "UnsupportedType": N_("This file is not a PDF, Word (DOCX) or OpenDocument (ODT) document. Save "
                          "it in one of those formats and upload it again."),
    "InvalidInput": N_("The file is empty. Choose the document again."),
    "Conflict": N_("This case takes no more documents: it is finished, or nobody assesses it."),
}
FLASHES = {
    "uploaded": N_("Your document has been added."),
    "draft": N_("Your draft has been saved. It has not been sent: send it when it is ready."),
    "done": N_("Thank you, your answer has been sent."),
    "newsletter": N_("Your newsletter choice has been saved."),
    "erasure": N_("Your request has been sent to the office. You will hear from us within a month."),
}


def _flash(request: Request) -> str | None:
    return FLASHES.get(request.query_params.get("saved", ""))


def _cases(account: Account) -> list[CaseProgress]:
    return [c for c in get_engine().progress(actor_of(account)) if c.process_id != "register_fee_run"]


def _pay_to() -> dict[str, str]:
    """Where an invoice is paid: the account the invoice PDF and UBL name (settings)."""
    settings = get_settings()
    return {"iban": settings.supplier_iban, "name": settings.supplier_name}


def _invoices(account: Account) -> list[dict[str, Any]]:
    with session_scope() as session:
        return my_data.invoices(session, actor_of(account))


# A certificate in these states still counts: its holder recertifies, never applies anew.
HOLDING = ("valid", "recertification_running", "suspended")


def _certificate(account: Account) -> dict[str, Any] | None:
    """The candidate's current certificate (the newest), its expiry as a date."""
    with session_scope() as session:
        rows = certificate_service.certificates_of(session, actor_of(account), None)
    if not rows:
        return None
    current = next((c for c in rows if c["status"] in HOLDING), rows[0])
    return {**current, "valid_until": date.fromisoformat(current["valid_until"])}


def _case_words() -> dict[str, Any]:
    """What the case templates need to put codes in words."""
    return {"names": PROCESS_NAMES, "waiting": WAITING, "outcome": outcome_label,
            "references": REFERENCE_PROCESSES}


@router.get("/mijn")
def overview(request: Request, account: Candidate) -> Response:
    cases = _cases(account)
    certificate = _certificate(account)
    applying = any(c.process_id == "certification" and c.status == "running" for c in cases)
    # An unpaid invoice is something to do as much as a task is: the case waits for it.
    to_pay = [i for i in _invoices(account) if i["status"] == "open" and i["kind"] != "credit_note"]
    return render(request, "mijn/overview.html", {
        "account": account, "running": [c for c in cases if c.status == "running"],
        "finished": [c for c in cases if c.status != "running"], **_case_words(),
        "flash": _flash(request), "my_steps": [s for c in cases for s in c.steps if s.mine],
        "to_pay": sorted(to_pay, key=lambda i: i["due_date"]), "pay_to": _pay_to(),
        "certificate": certificate,
        # Someone certified recertifies; someone applying waits for that application.
        "may_apply": not applying and not (certificate and certificate["status"] in HOLDING),
        # Recertification is for a certificate held (a suspended one: its page says why not
        # now); one already running is among the cases above.
        "may_recertify": bool(certificate and certificate["status"] in ("valid", "suspended")),
    })


@router.get("/mijn/cases/{instance_id}")
def case_page(request: Request, instance_id: str, account: Candidate) -> Response:
    case = next((c for c in _cases(account) if c.id == instance_id), None)
    if case is None:
        raise NotFound(f"no case {instance_id!r} of yours")
    return render(request, "mijn/case.html", {
        "case": case, **_case_words(), "flash": _flash(request),
        "certificate": _certificate(account) if case.process_id == "certificate_lifecycle" else None,
        # Documents belong to a case someone still assesses: not a finished one, not an order.
        "may_upload": documents.takes_uploads(case.process_id, case.status),
        "documents": _documents(account, instance_id), "errors": {},
        "accept": ",".join(documents.EXTENSIONS.values()), "max_mb": documents.MAX_BYTES // 2**20,
    })


def _documents(account: Account, instance_id: str) -> list[documents.DocumentView]:
    with session_scope() as session:
        return documents.for_case(session, actor_of(account), instance_id)


def _task_page(request: Request, account: Account, task_id: str, values: dict[str, Any] | None = None,
               errors: dict[str, str] | None = None, status_code: int = 200,
               message: str | None = None) -> Response:
    task = get_engine().task(actor_of(account), task_id)
    draft = task_forms.draft_of(account, task_id) if values is None else None
    if draft is not None:
        values = draft[0]
    return render(request, "mijn/task.html", {
        **task_forms.form_of(task, account, values, errors), "task": task, "message": message,
        "draft_saved_at": draft[1] if draft is not None else None,
        # Only what there is to read: a first dossier showed "Feedback —" before any was given.
        "context": [(k, v) for k, v in context_rows(task, account.language) if v not in (None, "", [], {})],
        "flash": _flash(request),
        "documents": _documents(account, task.instance_id),
        "accept": ",".join(documents.EXTENSIONS.values()), "max_mb": documents.MAX_BYTES // 2**20,
    }, status_code=status_code)


@router.get("/mijn/tasks/{task_id}")
def task_page(request: Request, task_id: str, account: Candidate) -> Response:
    return _task_page(request, account, task_id)


@router.post("/mijn/tasks/{task_id}")
async def complete_task(request: Request, task_id: str, account: Candidate) -> Response:
    if "draft" in await form_lists(request):  # "Save draft": kept, not sent
        kept = await task_forms.keep_draft(request, account, task_id)
        if kept.stale:
            return render(request, "mijn/stale.html", {"message": task_forms.STALE}, status_code=409)
        return RedirectResponse(f"/mijn/tasks/{task_id}?saved=draft", status_code=303)
    sent = await task_forms.submit(request, account, task_id)
    if sent.done:
        return RedirectResponse("/mijn?saved=done", status_code=303)
    if sent.stale or sent.task is None:
        return render(request, "mijn/stale.html", {"message": task_forms.STALE}, status_code=409)
    return _task_page(request, account, task_id, sent.data, sent.errors, status_code=422)


@router.post("/mijn/cases/{instance_id}/documents")
async def upload(request: Request, instance_id: str, account: Candidate,
                 file: Annotated[UploadFile, File()], next: Annotated[str, Form()] = "") -> Response:
    back = safe_next(next, f"/mijn/cases/{instance_id}")
    # Read one byte past the limit: enough to refuse, never the whole of a huge upload.
    content = await file.read(documents.MAX_BYTES + 1)
    try:
        with session_scope() as session:
            documents.upload(session, actor_of(account), instance_id, file.filename or "", content)
    except CertflowError as exc:
        if exc.status == 404:
            raise
        language = visitor_of(request).language
        message = gettext(language, UPLOAD_REFUSALS.get(type(exc).__name__, UPLOAD_REFUSALS["InvalidInput"]))
        return render(request, "mijn/upload_refused.html", {
            "message": message % {"mb": documents.MAX_BYTES // 2**20}, "back": back},
            status_code=exc.status)
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}saved=uploaded", status_code=303)


@router.get("/mijn/invoices")
def invoices(request: Request, account: Candidate) -> Response:
    return render(request, "mijn/invoices.html", {"invoices": _invoices(account), "pay_to": _pay_to()})


@router.get("/mijn/invoices/{number}/{kind}")
def invoice_file(number: str, kind: Literal["pdf", "ubl"], account: Candidate) -> Response:
    with session_scope() as session:
        document = billing_views.invoice_document(session, actor_of(account), number, kind)
    return Response(document.content, media_type=document.media_type,
                    headers={"Content-Disposition": attachment(document.filename)})


@router.get("/mijn/certificates")
def certificates(request: Request, account: Candidate) -> Response:
    with session_scope() as session:
        rows = certificate_service.certificates_of(session, actor_of(account), None)
    return render(request, "mijn/certificates.html", {"certificates": rows})


@router.get("/mijn/certificates/{certificate_id}/pdf")
def certificate_file(certificate_id: str, account: Candidate, language: str | None = None) -> Response:
    with session_scope() as session:
        document = certificate_service.certificate_document(session, actor_of(account), certificate_id, language)
    return Response(document.content, media_type=document.media_type,
                    headers={"Content-Disposition": attachment(document.filename)})


@router.get("/mijn/data")
def my_data_page(request: Request, account: Candidate) -> Response:
    return render(request, "mijn/data.html", {"account": account, "flash": _flash(request),
                                              "errors": {}, "values": {}})


@router.post("/mijn/data/newsletter")
async def newsletter(request: Request, account: Candidate) -> Response:
    form = await form_values(request)
    with session_scope() as session:
        my_data.set_newsletter(session, actor_of(account), receive=form.get("newsletter") == "yes")
    return RedirectResponse("/mijn/data?saved=newsletter", status_code=303)


@router.get("/mijn/data/export")
def export(account: Candidate) -> Response:
    with session_scope() as session:
        content = my_data.export_json(session, actor_of(account))
    return Response(content, media_type="application/json", headers={
        "Content-Disposition": attachment(f"mijn-cmi-{account.username}.json")})


@router.post("/mijn/data/erasure")
async def erasure(request: Request, account: Candidate) -> Response:
    form = await form_values(request)
    data = {"candidate": account.username, "reason": form.get("reason", "")[:2000]}
    try:
        get_engine().start(actor_of(account), "data_erasure", f"{account.username}:erasure", data)
    except CertflowError as exc:
        message = N_("You already asked; the office is handling your request.") if isinstance(
            exc, Conflict) else exc.message
        return render(request, "mijn/data.html", {
            "account": account, "values": form, "errors": {"reason": message}}, status_code=exc.status)
    return RedirectResponse("/mijn?saved=erasure", status_code=303)
