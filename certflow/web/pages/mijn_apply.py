"""Mijn CMI: applying for first certification, signing up for recertification, ordering.

GOV.UK's "one thing per page": each question on its own page, then a check-your-answers page
with a change link per answer, then submit. The answers travel as hidden fields from page to
page (no half-finished application is stored); the facade and the process's start guard
decide at submit, and a refusal (too late for recertification, no valid certificate for an
English copy) is shown with the guard's own words on what to do instead.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from certflow.clock import CLOCK
from certflow.engine.errors import CertflowError, Conflict
from certflow.i18n import N_, gettext
from certflow.services.accounts import Account
from certflow.web.deps import actor_of, get_engine
from certflow.web.pages.deps import form_values, require_role, visitor_of
from certflow.web.pages.nav import CANDIDATE_ROLES
from certflow.web.pages.rendering import render
from certflow.web.text_input import whole_number

router = APIRouter()
Candidate = Annotated[Account, Depends(require_role(*CANDIDATE_ROLES))]


@dataclass(frozen=True)
class Question:
    name: str
    kind: str  # radios | textarea | text | number
    label: str
    hint: str = ""
    options: tuple[tuple[str, str], ...] = ()
    optional: bool = False
    # Asked only when this earlier answer has this value.
    when: tuple[str, str] | None = None


ROUTES = (("hbo_diploma", N_("A completed 3-year full-time HBO (bachelor) diploma")),
          ("evc", N_("An EVC (recognition of prior learning) at HBO level")),
          ("cotan_assessment", N_("An assessment of HBO thinking and working level by a recognised (Cotan) bureau")))
FLOWS: dict[str, tuple[Question, ...]] = {
    "apply": (
        Question("eligibility_route", "radios", N_("How do you show your HBO level?"),
                 N_("You will be asked for the evidence when the office checks your application."), ROUTES),
        Question("motivation", "textarea", N_("Why do you apply for certification?"),
                 N_("A few sentences about your work as a career professional. At most 5,000 characters.")),
    ),
    "recertify": (
        Question("route", "radios", N_("How do you want to recertify?"), "", (
            ("written", N_("Written recertification: a dossier assessed by two assessors")),
            ("supervisor", N_("With my supervisor: a simplified dossier and my supervisor's signed statement")))),
        Question("level", "radios", N_("Do you recertify at the same level?"),
                 N_("At a changed level you answer the knowledge, task and competence questions again."),
                 (("same", N_("Yes, the same level")), ("changed", N_("No, a changed level"))),
                 when=("route", "written")),
        Question("supervisor", "text", N_("Your supervisor's username"),
                 N_("The supervisor who followed your development; they sign a statement for your dossier."),
                 when=("route", "supervisor")),
        Question("specialisation", "text", N_("Specialisation (optional)"),
                 N_("Only if you want to profile yourself in a specialisation; it is assessed orally."),
                 optional=True, when=("route", "supervisor")),
    ),
    "order": (
        Question("product", "radios", N_("What do you want to order?"), "", (
            ("english_certificate", N_("The English certificate (€ 22 excl. VAT)")),
            ("book", N_("The book 'Loopbaanbegeleiding in de praktijk' (€ 25 incl. VAT and shipping)")))),
        Question("quantity", "number", N_("How many books?"), N_("From 1 to 50."), when=("product", "book")),
    ),
}
ORDER_TOKEN = "order_token"
IN_PROGRESS = N_("You already have one in progress; see My CMI.")
SENT_ALREADY = N_("This order has been sent already; see My CMI.")
TITLES = {"apply": N_("Apply for first certification"), "recertify": N_("Sign up for recertification"),
          "order": N_("Order the English certificate or the book")}


def _asked(flow: str, answers: dict[str, str]) -> list[Question]:
    return [q for q in FLOWS[flow] if q.when is None or answers.get(q.when[0]) == q.when[1]]


def _problem(q: Question, value: str) -> str | None:
    if not value and not q.optional:
        return N_("Choose one of the options.") if q.kind == "radios" else N_("Fill in this field.")
    if q.kind == "radios" and value and value not in dict(q.options):
        return N_("Choose one of the options.")
    if q.kind == "number" and value and not 1 <= (whole_number(value, 2) or 0) <= 50:
        return N_("Enter a whole number from 1 to 50.")
    if q.kind == "textarea" and len(value) > 5000:
        return N_("Use at most 5,000 characters.")
    return None


def _page(request: Request, flow: str, answers: dict[str, str], step: int | None,
          errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    asked = _asked(flow, answers)
    context: dict[str, Any] = {"flow": flow, "title": TITLES[flow], "answers": answers,
                               "asked": asked, "errors": errors or {}, "values": answers}
    if step is None:
        if flow == "order":  # sent with the answers (check.html sends them all as hidden fields)
            context["answers"] = {**answers, ORDER_TOKEN: secrets.token_hex(8)}
        return render(request, "mijn/check.html", context, status_code=status_code)
    language = visitor_of(request).language
    options = [(value, gettext(language, label)) for value, label in asked[step].options]
    context.update(question=asked[step], step=step, total=len(asked), options=options)
    return render(request, "mijn/question.html", context, status_code=status_code)


@router.get("/mijn/{flow}")
def start(request: Request, flow: str, account: Candidate) -> Response:
    if flow not in FLOWS:
        return RedirectResponse("/mijn", status_code=303)
    if flow == "recertify":
        # Both routes refuse alike whoever is not (or no longer) in the register, or has a
        # recertification running: say so before the first question, not after the last.
        refusal = get_engine().start_refusal(actor_of(account), "recertification_written", {"level": "same"})
        if refusal:
            return render(request, "mijn/refused.html", {"title": TITLES[flow], "message": refusal,
                                                         "flow": flow, "again": False})
    answers = {k: v for k, v in request.query_params.items() if k in {q.name for q in FLOWS[flow]}}
    return _page(request, flow, answers, _step(request.query_params.get("step", ""), _asked(flow, answers)))


def _step(text: str, asked: list[Question]) -> int:
    """The question a page or post is at (its ``step``); the first when that is no question."""
    step = whole_number(text, 2)
    return step if step is not None and step < len(asked) else 0


@router.post("/mijn/{flow}")
async def answer(request: Request, flow: str, account: Candidate) -> Response:
    """One answer in; the next question, the check page, or (``submit``) the start."""
    if flow not in FLOWS:
        return RedirectResponse("/mijn", status_code=303)
    form = await form_values(request)
    answers = {q.name: form.get(q.name, "") for q in FLOWS[flow] if q.name in form}
    if form.get("submit") == "yes":
        return _submit(request, flow, account, answers, form.get(ORDER_TOKEN, ""))
    asked = _asked(flow, answers)
    step = _step(form.get("step", ""), asked)
    problem = _problem(asked[step], answers.get(asked[step].name, ""))
    if problem:
        return _page(request, flow, answers, step, {asked[step].name: problem}, status_code=422)
    for later, question in enumerate(asked[step + 1:], start=step + 1):
        if question.name not in answers:
            return _page(request, flow, answers, later)
    # Every question answered: what the start would refuse (an English certificate without a
    # valid one, a supervisor who is none) is said now, not after "Versturen" on the check page.
    process_id, data = _start_data(flow, account, answers)
    refusal = get_engine().start_refusal(actor_of(account), process_id, data)
    if refusal:
        return render(request, "mijn/refused.html", {"title": TITLES[flow], "message": refusal, "flow": flow},
                      status_code=422)
    return _page(request, flow, answers, None)


def _start_data(flow: str, account: Account, answers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    me = account.username
    if flow == "apply":
        return "certification", {"candidate": me, "eligibility_route": answers.get("eligibility_route", ""),
                                 "motivation": answers.get("motivation", "")}
    if flow == "recertify" and answers.get("route") == "supervisor":
        return "recertification_supervisor", {"candidate": me, "supervisor": answers.get("supervisor", ""),
                                              "specialisation": answers.get("specialisation", "")}
    if flow == "recertify":
        return "recertification_written", {"candidate": me, "level": answers.get("level", "")}
    data: dict[str, Any] = {"customer": me, "product": answers.get("product", "")}
    if data["product"] == "book":
        quantity = answers.get("quantity", "")
        number = whole_number(quantity, 2)
        data["quantity"] = quantity if number is None else number
    return "orders", data


def _business_key(account: Account, process_id: str, token: str) -> str:
    """One running case per candidate and process: sending the same application twice (a
    second click, a re-post) meets the running case's key, and is refused (Conflict). An
    order is keyed on its check page's one-time token instead: a person may order twice,
    but not by sending one check page twice."""
    if process_id != "orders":
        return f"{account.username}:{process_id}"  # theirs alone (engine.facade.own_key)
    if not re.fullmatch(r"[0-9a-f]{16}", token):  # a page from before the token: the time
        token = f"{CLOCK.now():%Y%m%d%H%M%S}"
    return f"{account.username}:{process_id}-{token}"


def _submit(request: Request, flow: str, account: Account, answers: dict[str, str],
            token: str) -> Response:
    missing = {q.name: p for q in _asked(flow, answers) if (p := _problem(q, answers.get(q.name, "")))}
    if missing:
        return _page(request, flow, answers, None, missing, status_code=422)
    process_id, data = _start_data(flow, account, answers)
    key = _business_key(account, process_id, token)
    try:
        view = get_engine().start(actor_of(account), process_id, key, data)
    except CertflowError as exc:
        refusal = exc.message
        if isinstance(exc, Conflict):
            refusal = SENT_ALREADY if process_id == "orders" else IN_PROGRESS
        return render(request, "mijn/refused.html", {"title": TITLES[flow], "message": refusal,
                                                     "flow": flow}, status_code=exc.status)
    return render(request, "mijn/submitted.html", {"title": TITLES[flow], "flow": flow, "case": view})
