"""My account: a signed-in person's own data, language and password.

A new e-mail address typed here does not take effect at once: it waits for the link mailed to
it (certflow.services.email_changes), and the page answers the same whether or not the address
has an account. Staff change someone's address directly on the people pages (admin.py)."""

from __future__ import annotations

import logging
from datetime import date

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response

from certflow.errors import CertflowError
from certflow.i18n import N_
from certflow.services import access, accounts, email_changes
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.web.pages.deps import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    CurrentUser,
    client_ip,
    field_errors,
    form_values,
    visitor_of,
)
from certflow.web.pages.rendering import redirect, render

log = logging.getLogger(__name__)

router = APIRouter()

PERSON_FIELDS = ("display_name", "email", "date_of_birth", "street", "postal_code", "city",
                 "country", "language")


def person_values(account: accounts.Account) -> dict[str, str]:
    """A person's data as form values."""
    values = {"display_name": account.display_name, "email": account.email,
              "language": account.language,
              "date_of_birth": account.date_of_birth.isoformat() if account.date_of_birth else ""}
    values.update({f: account.address.get(f, "") for f in accounts.ADDRESS_FIELDS})
    values["country"] = values["country"] or "NL"
    return values


FLASHES = {
    "1": N_("Your changes have been saved."),
    "email": N_("Your changes have been saved. Your e-mail address changes when you follow the "
                "link we sent to the new address."),
    "email-changed": N_("Your e-mail address has been changed."),
    "email-cancelled": N_("The change of your e-mail address has been cancelled."),
}


def _page(request: Request, user: accounts.Account, status_code: int = 200,
          **context: object) -> Response:
    """The account page, with the new address waiting for its link, if any."""
    with session_scope() as session:
        pending = email_changes.pending(session, user.username)
    return render(request, "account/account.html",
                  {"account": user, "values": person_values(user), "pending": pending, **context},
                  status_code=status_code)


@router.get("/account")
def account_page(request: Request, user: CurrentUser, saved: str = "") -> Response:
    return _page(request, user, flash=FLASHES.get(saved))


def _mail_change(token: str) -> None:
    """After the answer has gone out (see ``save_account``)."""
    try:
        with session_scope() as session:
            email_changes.mail(session, get_settings(), token)
    except Exception:  # noqa: BLE001  (the person asks again; the answer was sent already)
        log.exception("the mail for an e-mail address change could not be sent")


@router.post("/account")
async def save_account(request: Request, user: CurrentUser, background: BackgroundTasks) -> Response:
    form = await form_values(request)
    values = {k: form.get(k, "") for k in PERSON_FIELDS}
    is_candidate = user.has_role("candidate", "professional")
    clean, errors = accounts.clean_person(values, today=date.today(),
                                          require_address=is_candidate,
                                          require_birth_date=is_candidate)
    # The address is not set here but asked for: it changes when the link mailed to it is
    # followed. Whether another account has it is looked at only after the answer, which is
    # the same either way (it said 'An account with this e-mail address exists').
    new_email = clean.pop("email", "")
    if new_email.lower() == user.email.lower():
        new_email = ""
    status = 422
    if not errors and new_email:
        with session_scope() as session:
            refused = access.mail_request(session, get_settings(), email_changes.KIND, new_email,
                                          client_ip(request))
        if refused:
            errors["email"], status = refused.message, 429
    if not errors:
        try:
            with session_scope() as session:
                updated = accounts.update(session, user.username, clean)
                token = email_changes.ask(session, get_settings(), user.username, new_email) \
                    if new_email else None
        except CertflowError as exc:
            errors.update(field_errors(exc, "display_name"))
        else:
            visitor_of(request).set_cookie(LANGUAGE_COOKIE, updated.language,
                                           max_age=365 * 24 * 3600)
            if token is None:
                return redirect(request, "/account?saved=1")
            background.add_task(_mail_change, token)
            return redirect(request, "/account?saved=email")
    return _page(request, user, status_code=status, values=values, errors=errors)


@router.post("/account/email/cancel")
def cancel_email_change(request: Request, user: CurrentUser) -> Response:
    with session_scope() as session:
        email_changes.cancel(session, user.username)
    return redirect(request, "/account?saved=email-cancelled")


@router.get(email_changes.CONFIRM_PATH + "{token}")
def email_change_page(request: Request, token: str, user: CurrentUser) -> Response:
    """The link in the mail to the new address: a page with a button, so that a mail
    scanner opening the link uses nothing up. Signed in first (CurrentUser sends a visitor to
    sign in and back here), as the account that asked."""
    with session_scope() as session:
        change = email_changes.link(session, token)
    if change is None:
        return render(request, "account/email_change_invalid.html", status_code=410)
    if change.username != user.username:
        return render(request, "account/email_change_not_yours.html", status_code=403)
    return render(request, "account/email_change_confirm.html",
                  {"account": user, "change": change, "token": token})


@router.post(email_changes.CONFIRM_PATH + "{token}")
def confirm_email_change(request: Request, token: str, user: CurrentUser) -> Response:
    with session_scope() as session:
        change = email_changes.link(session, token)
        outcome = email_changes.confirm(session, user.username, token)
    if outcome == "changed":
        return redirect(request, "/account?saved=email-changed")
    if outcome == "taken" and change is not None:
        return render(request, "account/email_change_taken.html",
                      {"account": user, "change": change}, status_code=409)
    if outcome == "not_yours":
        return render(request, "account/email_change_not_yours.html", status_code=403)
    return render(request, "account/email_change_invalid.html", status_code=410)


@router.post("/account/password")
async def change_password(request: Request, user: CurrentUser) -> Response:
    form = await form_values(request)
    errors: dict[str, str] = {}
    settings = get_settings()
    with session_scope() as session:
        checked = access.sign_in(session, settings, user.email, form.get("current_password", ""),
                                 client_ip(request))
    if isinstance(checked, access.SignInRefused):
        errors["current_password"] = N_("Your current password is not right.")
    problem = access.password_problem(form.get("new_password", ""), user.email)
    if problem:
        errors["new_password"] = problem
    elif form.get("new_password") != form.get("new_password_again"):
        errors["new_password_again"] = N_("The two passwords are not the same.")
    if errors:
        return _page(request, user, status_code=422, errors=errors, password_form=True)
    with session_scope() as session:
        # Setting a password ends every session; this browser gets a fresh one.
        access.set_password(session, user.username, form["new_password"])
        cookie, _ = access.start_session(session, settings, user.username, client_ip(request))
    visitor_of(request).set_cookie(SESSION_COOKIE, cookie)
    return redirect(request, "/account?saved=1")
