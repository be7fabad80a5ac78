"""People: the office completes a person's data (address, date of birth); an admin creates
staff accounts and sets roles."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from certflow.errors import CertflowError
from certflow.i18n import N_
from certflow.services import access, accounts
from certflow.services.accounts import Account
from certflow.store.db import session_scope
from certflow.web.pages.account import PERSON_FIELDS, person_values
from certflow.web.pages.deps import (
    PageForbidden,
    field_errors,
    form_lists,
    form_values,
    require_role,
)
from certflow.web.pages.rendering import redirect, render

router = APIRouter(prefix="/admin/people")

PeopleClerk = Annotated[Account, Depends(require_role("admin", "office", "coordinator"))]
Admin = Annotated[Account, Depends(require_role("admin"))]


@router.get("")
def people(request: Request, user: PeopleClerk, q: str = "") -> Response:
    with session_scope() as session:
        found = accounts.list_accounts(session, q[:100])
    return render(request, "admin/people.html", {"people": found, "q": q[:100],
                                                 "role_labels": accounts.ROLE_LABELS})


@router.get("/new")
def new_person_page(request: Request, user: Admin) -> Response:
    return render(request, "admin/new_person.html", {
        "values": {"country": "NL", "language": "nl"}, "roles": [],
        "role_labels": accounts.ROLE_LABELS})


@router.post("/new")
async def new_person(request: Request, user: Admin) -> Response:
    form = await form_values(request)
    roles = (await form_lists(request)).get("roles", [])
    values = {k: form.get(k, "") for k in PERSON_FIELDS}
    clean, errors = accounts.clean_person(values, today=date.today(), require_address=False,
                                          require_birth_date=False)
    if not roles:
        errors["roles"] = N_("Choose at least one role.")
    if not errors:
        try:
            with session_scope() as session:
                created = accounts.create(
                    session, accounts.free_username(session, clean["email"]),
                    clean.pop("display_name"), roles, email=clean.pop("email"),
                    now=access.wall_now(), **clean)
        except CertflowError as exc:
            errors.update(field_errors(exc, "email"))
        else:
            return redirect(request, f"/admin/people/{created.username}?created=1")
    return render(request, "admin/new_person.html", {
        "values": values, "roles": roles, "errors": errors,
        "role_labels": accounts.ROLE_LABELS}, status_code=422)


def _load(username: str) -> Account:
    try:
        with session_scope() as session:
            return accounts.get(session, username)
    except CertflowError:
        raise PageForbidden() from None


@router.get("/{username}")
def person_page(request: Request, username: str, user: PeopleClerk, created: str = "",
                saved: str = "") -> Response:
    person = _load(username)
    flash = N_("The account has been created. They set a password with 'Forgot your password?'.") \
        if created else (N_("Your changes have been saved.") if saved else None)
    return render(request, "admin/person.html", {
        "person": person, "values": person_values(person), "roles": list(person.roles),
        "role_labels": accounts.ROLE_LABELS, "flash": flash,
        "may_set_roles": user.has_role("admin")})


@router.post("/{username}")
async def save_person(request: Request, username: str, user: PeopleClerk) -> Response:
    person = _load(username)
    form = await form_values(request)
    roles = (await form_lists(request)).get("roles", [])
    values = {k: form.get(k, "") for k in PERSON_FIELDS}
    clean, errors = accounts.clean_person(values, today=date.today(), require_address=False,
                                          require_birth_date=False)
    may_set_roles = user.has_role("admin")
    if may_set_roles and not roles:
        errors["roles"] = N_("Choose at least one role.")
    if not errors:
        try:
            with session_scope() as session:
                accounts.update(session, username, clean)
                if may_set_roles:
                    accounts.set_roles(session, username, roles)
        except CertflowError as exc:
            errors.update(field_errors(exc, "email"))
        else:
            return redirect(request, f"/admin/people/{username}?saved=1")
    return render(request, "admin/person.html", {
        "person": person, "values": values, "roles": roles if may_set_roles else person.roles,
        "errors": errors, "role_labels": accounts.ROLE_LABELS,
        "may_set_roles": may_set_roles}, status_code=422)
