"""Payments ("Betalingen"): the office's page for money coming in.

Import the bank's CAMT.053 statement and read what it did (paid invoices and whether the
waiting process was told, partial and overpaid payments, payments not recognised, entries
imported before); work the queue of payments that did not settle an invoice by themselves
(link one to the invoice its payer did not name, or mark it handled with a note); register a
payment the office learnt of otherwise. Payer names and amounts are personal data: staff who
see case data only (``certflow.roles.sees_case_data``).

The money is certflow.web.incoming_payments' (shared with the JSON API: one transaction, then
``payment_received`` after commit); these routes read forms, put refusals next to their field
and say in words what happened.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from certflow.errors import CertflowError, Conflict, InvalidInput
from certflow.i18n import N_, Message
from certflow.localtime import local_date
from certflow.roles import CASE_DATA_ROLES, sees_case_data
from certflow.services import camt, office_figures, payment_queue
from certflow.services.accounts import Account
from certflow.services.billing import views as billing_views
from certflow.services.payments import PaymentOutcome
from certflow.store.db import session_scope
from certflow.web import incoming_payments
from certflow.web.deps import PathId, actor_of, get_engine
from certflow.web.pages.deps import PageForbidden, field_errors, form_values, require_role
from certflow.web.pages.rendering import render
from certflow.web.pages.dashboard import routed

router = APIRouter(prefix="/payments")
MAX_STATEMENT_BYTES = incoming_payments.MAX_STATEMENT_BYTES
MAX_AMOUNT = Decimal(10) ** 9
TOKEN = "payment_token"


def case_data_staff(account: Annotated[Account, Depends(require_role(*CASE_DATA_ROLES))]) -> Account:
    """The office, coordinators, office managers and admins, as staff (payers are personal data)."""
    if not sees_case_data(actor_of(account)):
        raise PageForbidden()
    return account


Office = Annotated[Account, Depends(case_data_staff)]

STATEMENT_REFUSALS = {
    "missing": N_("Choose the bank statement file (CAMT.053, .xml) you downloaded from the bank."),
    "empty": N_("The file is empty. Download the statement from the bank again and choose that file."),
    "large": N_("The file is larger than 5 MB. Download a statement of fewer days from the bank and import each."),
    "not_xml": N_("This file is not XML. Choose the CAMT.053 file (.xml) from the bank, not a PDF or CSV export."),
    "not_camt": N_("This XML file is not a CAMT.053 bank statement. Download the statement from the bank "
                   "as CAMT.053 and choose that file."),
}
_BUCKETS = ("matched", "partial", "overpaid", "unmatched", "duplicates")  # ImportResult's
UNREADABLE = N_("The statement could not be read (%(detail)s), so nothing was imported. Download it "
                "from the bank again; if that does not help, ask the administrator.")


# -- the page: import, the queue -------------------------------------------------------------
def _list_page(request: Request, account: Account, context: dict[str, Any] | None = None,
               status_code: int = 200) -> Response:
    with session_scope() as session:
        queue = payment_queue.queue(session, actor_of(account))
    return render(request, "payments/list.html", {
        "queue": queue, "limit": payment_queue.MAX_LIST, "statement_errors": {}, "imported": None,
        "done": None, "monitor": routed(request, "/monitor/instances/{instance_id}"), **(context or {})},
        status_code=status_code)


@router.get("")
def payments_page(request: Request, account: Office) -> Response:
    return _list_page(request, account)


async def _statement(file: object) -> tuple[bytes, str | None]:
    """The upload's bytes, or what is wrong with it before it is read as a statement. The form
    is read as it comes: a browser sends no file chosen as an empty text field, not a file."""
    if not isinstance(file, UploadFile) or not file.filename:
        return b"", "missing"
    content = await file.read(MAX_STATEMENT_BYTES + 1)  # one past the limit: enough to refuse
    if len(content) > MAX_STATEMENT_BYTES:
        return b"", "large"
    if not content.strip():
        return b"", "empty"
    return content, None


def _refusal(exc: InvalidInput) -> str:
    """The reader's refusal, in words a clerk can act on."""
    cause = exc.__cause__
    if isinstance(cause, camt.NotXml):
        return STATEMENT_REFUSALS["not_xml"]
    if isinstance(cause, camt.NotCamt053):
        return STATEMENT_REFUSALS["not_camt"]
    return Message(UNREADABLE, detail=str(exc.message).removeprefix("CAMT.053: "))


@router.post("/import")
async def import_statement(request: Request, account: Office) -> Response:
    statement = (await request.form()).get("statement")
    content, problem = await _statement(statement)
    if problem:
        return _list_page(request, account, {"statement_errors": {"statement": STATEMENT_REFUSALS[problem]}},
                          status_code=413 if problem == "large" else 422)
    actor = actor_of(account)
    try:
        imported = await run_in_threadpool(incoming_payments.import_statement, get_engine(), actor, content)
    except InvalidInput as exc:
        return _list_page(request, account, {"statement_errors": {"statement": _refusal(exc)}}, status_code=422)
    outcomes = [o for bucket in _BUCKETS for o in getattr(imported.result, bucket)]
    with session_scope() as session:
        booked = payment_queue.by_id(session, actor, [o.payment_id for o in outcomes])
    report = {bucket: [{"outcome": o, "payment": booked.get(o.payment_id),
                        "told": _heard(o, imported.told_about(o.invoice_number))}
                       for o in getattr(imported.result, bucket)] for bucket in _BUCKETS}
    return _list_page(request, account, {"imported": report, "filename": getattr(statement, "filename", "")})


def _heard(outcome: PaymentOutcome, told: incoming_payments.Told | None) -> incoming_payments.Told | None:
    """What the invoice's process heard, to be said: for a payment that paid its invoice now;
    for one sent before (a statement or form again) only when it was told now, its first time
    having committed and never got to tell it. A repeat is not news for the process."""
    return told if outcome.invoice_paid or (told is not None and told.delivered) else None


# -- one payment: link it to an invoice, or mark it handled ----------------------------------
def _payment_page(request: Request, account: Account, payment_id: int, values: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    actor = actor_of(account)
    with session_scope() as session:
        payment = payment_queue.payment(session, actor, payment_id)
        # To pick the invoice from by its customer's name as well as its number.
        unpaid = office_figures.unpaid_invoices(session, actor, local_date(get_engine().now())) \
            if payment.in_queue and payment.status == "unmatched" else []
    return render(request, "payments/payment.html", {
        "payment": payment, "unpaid": unpaid, "values": values or {}, "errors": errors or {},
        "invoices_page": routed(request, "/dashboard/invoices")}, status_code=status_code)


@router.get("/new")
def new_payment(request: Request, account: Office) -> Response:
    today = local_date(get_engine().now())
    # Typed as the hint says (15-3-2026): a browser's date picker shows 12/03/2026 for
    # 3 December in an English browser, which a Dutch office reads as 12 March.
    return _new_page(request, {"booked_date": f"{today.day}-{today.month}-{today.year}"})


def _new_page(request: Request, values: dict[str, str], errors: dict[str, str] | None = None,
              status_code: int = 200) -> Response:
    # A new one-time token unless this is the same form coming back with its errors: the
    # token is the payment's id, so a second click or a re-post registers it once.
    token = values.get(TOKEN) or secrets.token_hex(8)
    return render(request, "payments/new.html", {"values": {**values, TOKEN: token}, "errors": errors or {}},
                  status_code=status_code)


@router.get("/{payment_id}")
def payment_page(request: Request, payment_id: PathId, account: Office) -> Response:
    return _payment_page(request, account, payment_id)


@router.post("/{payment_id}/link")
async def link_payment(request: Request, payment_id: PathId, account: Office) -> Response:
    form = await form_values(request)
    number = form.get("invoice_number", "")[:40]
    if not number:
        return _payment_page(request, account, payment_id, form, {
            "invoice_number": N_("Enter the invoice number, such as 2026-000012.")}, status_code=422)
    try:
        recorded = await run_in_threadpool(incoming_payments.link, get_engine(), actor_of(account),
                                           payment_id, number)
    except CertflowError as exc:
        if exc.status in (403, 404):
            raise
        return _payment_page(request, account, payment_id, form, field_errors(exc, "invoice_number"),
                             status_code=exc.status)
    return _done(request, account, "linked", recorded)


@router.post("/{payment_id}/handled")
async def mark_handled(request: Request, payment_id: PathId, account: Office) -> Response:
    form = await form_values(request)
    try:
        with session_scope() as session:
            handled = payment_queue.mark_handled(session, get_engine().now(), actor_of(account), payment_id,
                                                 form.get("note", ""))
    except CertflowError as exc:
        if exc.status in (403, 404):
            raise
        return _payment_page(request, account, payment_id, form, field_errors(exc, "note"), status_code=exc.status)
    return _list_page(request, account, {"done": {"kind": "handled", "payment": handled, "told": None}})


def _done(request: Request, account: Account, kind: str, recorded: incoming_payments.Recorded) -> Response:
    """The queue, with what was just done on top (a form sent twice says so)."""
    outcome = recorded.outcome
    with session_scope() as session:
        payment = payment_queue.payment(session, actor_of(account), outcome.payment_id)
    return _list_page(request, account, {"done": {
        "kind": "repeated" if outcome.duplicate else kind, "payment": payment, "told": _heard(outcome, recorded.told)}})


# -- a payment by hand -----------------------------------------------------------------------
def parse_amount(text: str) -> Decimal | None:
    """An amount as people type it: ``786,50``, ``786.50``, ``€ 1.234,56``, ``1,234.56``,
    ``1234``; None when it is not one (not whole cents, not positive). A ``,`` or ``.`` with one
    or two digits after it at the end is the decimal mark; any other groups thousands, by
    threes, and is not the decimal mark too. What could be either is refused, not guessed:
    ``786,505`` is a Dutch amount with a digit too many more likely than 786.505 euros, so a
    comma groups thousands only before a decimal point (``1,234.56``)."""
    compact = re.sub(r"\s|€|EUR", "", text, flags=re.IGNORECASE)
    # ASCII digits only: "٣" is a digit to re and to Decimal, and nobody types it for 3.
    found = re.fullmatch(r"([\d.,]*?)(?:([.,])(\d{1,2}))?", compact, flags=re.ASCII)
    if found is None:
        return None
    whole, mark, cents = found.group(1), found.group(2), found.group(3) or "0"
    grouped = re.fullmatch(r"\d{1,3}([.,])\d{3}(?:\1\d{3})*", whole, flags=re.ASCII)
    separator = grouped.group(1) if grouped else None
    plain = re.fullmatch(r"\d+", whole, flags=re.ASCII) is not None
    if not (plain or (separator is not None and separator != mark and "." in (separator, mark))):
        return None
    try:
        amount = Decimal(f"{re.sub(r'[.,]', '', whole)}.{cents}").quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    return amount if 0 < amount < MAX_AMOUNT else None


def parse_day(text: str) -> date | None:
    """``2026-03-15`` (a date field) or ``15-3-2026`` / ``15/3/2026`` as typed."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text, flags=re.ASCII):
            return date.fromisoformat(text)
        if found := re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", text, flags=re.ASCII):
            return date(int(found.group(3)), int(found.group(2)), int(found.group(1)))
    except ValueError:
        return None
    return None


def _hand_problems(form: dict[str, str], today: date) -> tuple[dict[str, str], Decimal | None, date | None]:
    errors: dict[str, str] = {}
    if not form.get("invoice"):
        errors["invoice"] = N_("Enter the invoice number (such as 2026-000012) or the 16-digit payment reference.")
    amount = parse_amount(form.get("amount", ""))
    if amount is None:
        errors["amount"] = N_("Enter the amount in euros, such as 786,50.") if not form.get("amount") else \
            N_("Enter an amount in euros and cents, such as 786,50 (more than 0, at most 2 decimals).")
    booked = parse_day(form.get("booked_date", ""))
    if booked is None:
        errors["booked_date"] = N_("Enter the date the money came in, such as 15-3-2026.")
    elif booked > today:
        errors["booked_date"] = N_("The date the money came in cannot be in the future.")
    if len(form.get("payer_name", "")) > 200:
        errors["payer_name"] = N_("Use at most 200 characters.")
    return errors, amount, booked


def _same_payment(account: Account, number: str, amount: Decimal, booked: date | None, payer: str) -> str:
    """The id of a payment whose form came without its token: what it says, so that sending
    it again is still the same payment (the same clerk, invoice, amount, day and payer)."""
    said = "\x1f".join((account.username, number, f"{amount:.2f}", str(booked), payer))
    return "same:" + hashlib.sha256(said.encode()).hexdigest()[:32]


@router.post("/new")
async def register_payment(request: Request, account: Office) -> Response:
    form = await form_values(request)
    values = {k: form.get(k, "") for k in ("invoice", "amount", "booked_date", "payer_name", TOKEN)}
    engine, actor = get_engine(), actor_of(account)
    errors, amount, booked = _hand_problems(values, local_date(engine.now()))
    number = None
    if values["invoice"] and "invoice" not in errors:
        with session_scope() as session:
            number = payment_queue.named_invoice(session, actor, values["invoice"][:200])
        if number is None:
            errors["invoice"] = N_("No invoice has this number or payment reference. Check it on the invoice "
                                   "or the bank's description.")
    if not re.fullmatch(r"[0-9a-f]{16}", values[TOKEN]):
        values[TOKEN] = ""  # a form from elsewhere: a new token if it comes back with errors
    if errors or amount is None or number is None:
        return _new_page(request, values, errors, status_code=422)
    external_id = f"page:{values[TOKEN] or _same_payment(account, number, amount, booked, values['payer_name'])}"

    def record() -> incoming_payments.Recorded:
        return incoming_payments.record(engine, actor, invoice_number=number, amount=amount, source="staff",
                                        external_id=external_id, booked_date=booked,
                                        payer_name=values["payer_name"])

    try:
        recorded = await run_in_threadpool(record)
    except Conflict:  # the same form's other click, committing right now: it is there after
        recorded = await run_in_threadpool(record)
    return _done(request, account, "registered", recorded)


@router.get("/invoices/{number}/pdf")
def invoice_pdf(number: str, account: Office) -> Response:
    """The invoice a payment is for, as the customer got it."""
    with session_scope() as session:
        document = billing_views.invoice_document(session, actor_of(account), number[:20], "pdf")
    return Response(document.content, media_type=document.media_type,
                    headers={"Content-Disposition": f'inline; filename="{document.filename}"'})
