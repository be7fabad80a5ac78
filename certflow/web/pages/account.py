"""My account: a signed-in person's own data, language and password."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certflow.errors import CertflowError
from certflow.i18n import N_
from certflow.services import access, accounts
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


@router.get("/account")
def account_page(request: Request, user: CurrentUser, saved: str = "") -> Response:
    return render(request, "account/account.html", {
        "account": user, "values": person_values(user),
        "flash": N_("Your changes have been saved.") if saved else None})


@router.post("/account")
async def save_account(request: Request, user: CurrentUser) -> Response:
    form = await form_values(request)
    values = {k: form.get(k, "") for k in PERSON_FIELDS}
    is_candidate = user.has_role("candidate", "professional")
    clean, errors = accounts.clean_person(values, today=date.today(),
                                          require_address=is_candidate,
                                          require_birth_date=is_candidate)
    if not errors:
        try:
            with session_scope() as session:
                updated = accounts.update(session, user.username, clean)
        except CertflowError as exc:
            errors.update(field_errors(exc, "email"))
        else:
            visitor_of(request).set_cookie(LANGUAGE_COOKIE, updated.language,
                                           max_age=365 * 24 * 3600)
            return redirect(request, "/account?saved=1")
    return render(request, "account/account.html",
                  {"account": user, "values": values, "errors": errors}, status_code=422)


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
        return render(request, "account/account.html",
                      {"account": user, "values": person_values(user), "errors": errors,
                       "password_form": True}, status_code=422)
    with session_scope() as session:
        # Setting a password ends every session; this browser gets a fresh one.
        access.set_password(session, user.username, form["new_password"])
        cookie, _ = access.start_session(session, settings, user.username, client_ip(request))
    visitor_of(request).set_cookie(SESSION_COOKIE, cookie)
    return redirect(request, "/account?saved=1")
