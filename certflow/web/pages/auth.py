"""Signing in and out, registering as a candidate, resetting a password, choosing a language."""

from __future__ import annotations

import logging
from datetime import date

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from certflow import i18n
from certflow.services import access, accounts, sign_ups
from certflow.services.access import SignInRefused
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.web.pages.deps import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    OptionalUser,
    client_ip,
    form_values,
    safe_next,
    visitor_of,
)
from certflow.web.pages.nav import home_url
from certflow.web.pages.rendering import redirect, render

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/")
def home(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return redirect(request, "/sign-in", status_code=303)
    return redirect(request, home_url(user, request), status_code=303)


@router.get("/sign-in")
def sign_in_page(request: Request, user: OptionalUser, next: str = "", expired: str = "") -> Response:
    if user is not None:
        return redirect(request, safe_next(next, home_url(user, request)))
    flash = i18n.N_("Your session has expired. Sign in again.") if expired else None
    return render(request, "auth/sign_in.html", {"next": safe_next(next, ""), "flash": flash})


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await form_values(request)
    values = {"email": form.get("email", ""), "next": safe_next(form.get("next"), "")}
    errors = {}
    if not values["email"]:
        errors["email"] = i18n.N_("Enter your e-mail address.")
    if not form.get("password"):
        errors["password"] = i18n.N_("Enter your password.")
    if errors:
        return render(request, "auth/sign_in.html", {"values": values, "errors": errors,
                                                     "next": values["next"]}, status_code=422)
    settings = get_settings()
    with session_scope() as session:
        outcome = access.sign_in(session, settings, values["email"], form["password"],
                                 client_ip(request))
        if not isinstance(outcome, SignInRefused):
            cookie, _ = access.start_session(session, settings, outcome.username,
                                             client_ip(request))
    if isinstance(outcome, SignInRefused):
        message = i18n.gettext(visitor_of(request).language, outcome.message).format(
            minutes=outcome.retry_minutes)
        return render(request, "auth/sign_in.html",
                      {"values": values, "next": values["next"], "refusal": message},
                      status_code=429 if outcome.retry_minutes else 401)
    account = outcome
    visitor = visitor_of(request)
    visitor.set_cookie(SESSION_COOKIE, cookie)
    visitor.set_cookie(LANGUAGE_COOKIE, account.language, max_age=365 * 24 * 3600)
    return redirect(request, safe_next(values["next"], home_url(account, request)))


@router.post("/sign-out")
def sign_out(request: Request) -> Response:
    with session_scope() as session:
        access.end_session(session, request.cookies.get(SESSION_COOKIE))
    visitor_of(request).delete_cookie(SESSION_COOKIE)
    return redirect(request, "/sign-in?signed_out=1")


@router.post("/language")
async def choose_language(request: Request, user: OptionalUser) -> Response:
    form = await form_values(request)
    language = i18n.normalise(form.get("language"))
    if user is not None:
        with session_scope() as session:
            accounts.update(session, user.username, {"language": language})
    visitor_of(request).set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600)
    return redirect(request, safe_next(form.get("back"), "/"))


# -- registering as a candidate -----------------------------------------------------------------

REGISTER_FIELDS = ("display_name", "email", "date_of_birth", "street", "postal_code", "city",
                   "country", "language")


@router.get("/sign-up")
def sign_up_page(request: Request) -> Response:
    lang = visitor_of(request).language
    return render(request, "auth/sign_up.html", {"values": {"country": "NL", "language": lang}})


def _start_sign_up(sign_up: sign_ups.SignUp) -> None:
    """After the answer has gone out (see ``sign_up``)."""
    try:
        with session_scope() as session:
            sign_ups.start(session, get_settings(), sign_up)
    except Exception:  # noqa: BLE001  (the person signs up again; the answer was sent already)
        log.exception("a sign-up could not be kept or its mail not sent")


@router.post("/sign-up")
async def sign_up(request: Request, background: BackgroundTasks) -> Response:
    form = await form_values(request)
    values = {k: form.get(k, "") for k in REGISTER_FIELDS}
    clean, errors = accounts.clean_person(values, today=date.today(), require_address=True,
                                          require_birth_date=True)
    password = form.get("password", "")
    problem = access.password_problem(password, values["email"])
    if problem:
        errors["password"] = problem
    elif password != form.get("password_again", ""):
        errors["password_again"] = i18n.N_("The two passwords are not the same.")
    if not form.get("privacy"):
        errors["privacy"] = i18n.N_("Agree to how we keep your data to register.")
    if errors:
        return render(request, "auth/sign_up.html", {"values": values, "errors": errors},
                      status_code=422)
    with session_scope() as session:  # before the hash: a refused request costs little
        refused = access.mail_request(session, get_settings(), "sign-up", clean["email"],
                                      client_ip(request))
    if refused:
        return render(request, "auth/sign_up.html",
                      {"values": values, "errors": {"email": refused.message}}, status_code=429)
    # Hashed here for every sign-up, whoever the address belongs to (and off the event loop).
    password_hash = await run_in_threadpool(access.hash_password, password)
    # Whether the address has an account is looked at only after the answer, which is the
    # same either way: who has an account is no one's to learn here. The new address gets a
    # link to confirm, the owner of a known one a warning (certflow.services.sign_ups).
    background.add_task(_start_sign_up, sign_ups.SignUp(
        email=clean["email"], display_name=clean["display_name"], language=clean["language"],
        address=clean["address"], date_of_birth=clean["date_of_birth"],
        password_hash=password_hash))
    return render(request, "auth/sign_up_sent.html", {"email": clean["email"],
                                                      "hours": get_settings().sign_up_confirm_hours})


@router.get("/sign-up/confirm/{token}")
def confirm_sign_up_page(request: Request, token: str) -> Response:
    """The link in the sign-up's mail: a form asking for the password chosen at sign-up. Only
    a page: a mail scanner fetching the link uses nothing up, and whoever opens a link sent
    by someone else is signed into nothing (certflow.services.sign_ups)."""
    with session_scope() as session:
        usable = sign_ups.usable(session, token)
    if not usable:
        return render(request, "auth/sign_up_invalid.html", status_code=410)
    return render(request, "auth/sign_up_confirm.html", {"token": token})


def _confirm(token: str, password: str, ip: str) -> tuple[accounts.Account | sign_ups.NotConfirmed,
                                                         str]:
    """The account made and a session cookie for it, or why not (off the event loop: argon2)."""
    settings = get_settings()
    with session_scope() as session:
        outcome = sign_ups.confirm(session, settings, token, password, ip)
        if isinstance(outcome, sign_ups.NotConfirmed):
            return outcome, ""
        cookie, _ = access.start_session(session, settings, outcome.username, ip)
    return outcome, cookie


@router.post("/sign-up/confirm/{token}")
async def confirm_sign_up(request: Request, token: str) -> Response:
    """The account is made, and its holder signed in, only with the sign-up's password."""
    password = (await form_values(request)).get("password", "")
    if not password:
        with session_scope() as session:
            usable = sign_ups.usable(session, token)
        return _not_confirmed(request, token, sign_ups.NotConfirmed("wrong" if usable else "gone"),
                              i18n.N_("Enter your password."))
    outcome, cookie = await run_in_threadpool(_confirm, token, password, client_ip(request))
    if isinstance(outcome, sign_ups.NotConfirmed):
        return _not_confirmed(request, token, outcome,
                              i18n.N_("This is not the password you chose when you signed up."))
    visitor = visitor_of(request)
    visitor.set_cookie(SESSION_COOKIE, cookie)
    visitor.set_cookie(LANGUAGE_COOKIE, outcome.language, max_age=365 * 24 * 3600)
    return redirect(request, home_url(outcome, request))


def _not_confirmed(request: Request, token: str, why: sign_ups.NotConfirmed,
                   wrong: str) -> Response:
    """410 for a link that no longer works, else the form again: ``wrong`` on the password
    field (422), or the sign-in limit's 'wait' (429)."""
    if why.reason in ("gone", "dropped"):
        return render(request, "auth/sign_up_invalid.html", {"dropped": why.reason == "dropped"},
                      status_code=410)
    if why.reason == "wait":
        refusal = i18n.gettext(visitor_of(request).language,
                               access.too_many_failures(get_settings()).message)
        return render(request, "auth/sign_up_confirm.html", {
            "token": token, "refusal": refusal.format(minutes=why.retry_minutes)}, status_code=429)
    return render(request, "auth/sign_up_confirm.html",
                  {"token": token, "errors": {"password": wrong}}, status_code=422)


# -- password reset -------------------------------------------------------------------------------

@router.get("/password/forgot")
def forgot_page(request: Request) -> Response:
    return render(request, "auth/forgot.html")


def _mail_reset(account: accounts.Account, link: str) -> None:
    """After the answer has gone out (see ``forgot``)."""
    settings = get_settings()
    try:
        with session_scope() as session:
            access.send_reset_mail(session, settings, account, link)
    except Exception:  # noqa: BLE001  (the person asks again; the answer was sent already)
        log.exception("the password reset mail to %s could not be sent", account.username)


@router.post("/password/forgot")
async def forgot(request: Request, background: BackgroundTasks) -> Response:
    form = await form_values(request)
    email = form.get("email", "")
    if not accounts.valid_email(email):
        return render(request, "auth/forgot.html", {
            "values": {"email": email},
            "errors": {"email": i18n.N_("Enter an e-mail address like name@example.nl.")}},
            status_code=422)
    settings = get_settings()
    with session_scope() as session:
        refused = access.mail_request(session, settings, "password-reset", email,
                                      client_ip(request))
        found = None if refused else access.request_reset(session, settings, email)
    if refused:
        return render(request, "auth/forgot.html", {
            "values": {"email": email}, "errors": {"email": refused.message}}, status_code=429)
    if found is not None:
        account, token = found
        # From the configured address, not the request's Host header: whoever sends the
        # request chooses that, and the link would take the token to their server.
        link = settings.public_url.rstrip("/") + f"/password/reset/{token}"
        # Sent after the answer: a known address answered as much later as writing and sending
        # the mail took (7.6-12 ms against 2.6-3.5 ms, more with a remote SMTP server), which
        # told who has an account; and nobody waits on the mail server.
        background.add_task(_mail_reset, account, link)
    # The same answer whether or not the address has an account: no one learns who has one.
    return render(request, "auth/forgot_sent.html", {"email": email})


@router.get("/password/reset/{token}")
def reset_page(request: Request, token: str) -> Response:
    with session_scope() as session:
        account = access.reset_account(session, token)
    if account is None:
        return render(request, "auth/reset_invalid.html", status_code=410)
    return render(request, "auth/reset.html", {"token": token})


@router.post("/password/reset/{token}")
async def reset(request: Request, token: str) -> Response:
    form = await form_values(request)
    password = form.get("password", "")
    with session_scope() as session:
        account = access.reset_account(session, token)
    if account is None:
        return render(request, "auth/reset_invalid.html", status_code=410)
    errors = {}
    problem = access.password_problem(password, account.email)
    if problem:
        errors["password"] = problem
    elif password != form.get("password_again", ""):
        errors["password_again"] = i18n.N_("The two passwords are not the same.")
    if errors:
        return render(request, "auth/reset.html", {"token": token, "errors": errors},
                      status_code=422)
    with session_scope() as session:
        access.complete_reset(session, token, password)
    return redirect(request, "/sign-in?reset=1")
