"""People: the office completes a person's data (address, date of birth, who is invoiced:
person or organisation with KvK number, OIN and VAT number); an admin creates staff accounts,
sets roles and deactivates or reactivates accounts."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import Response

from certflow.errors import CertflowError
from certflow.i18n import N_
from certflow.services import access, accounts, email_changes
from certflow.services.accounts import Account
from certflow.settings import get_settings
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
log = logging.getLogger(__name__)

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


FLASHES = {
    "created": N_("The account has been created. They set a password with 'Forgot your password?'."),
    "saved": N_("Your changes have been saved."),
    "deactivated": N_("The account is deactivated: they cannot sign in, and their API tokens "
                      "and sessions no longer work."),
    "reactivated": N_("The account is active again: they can sign in."),
}


def _values(person: Account) -> dict[str, str]:
    return {**person_values(person), "customer_type": person.customer_type,
            "kvk_number": person.kvk_number or "", "oin": person.oin or "",
            "vat_id": person.vat_id or ""}


def may_change_email(user: Account, person: Account) -> bool:
    """The office completes people's data, but the e-mail address is where a password reset
    goes: changing the address of anyone who works on cases would hand their account to
    whoever changed it (staff, an admin, and equally an assessor or committee member, whose
    verdicts the audit then records under their name). So that is an admin's to do; the
    office changes a candidate's; anyone's own address is theirs (Mijn account)."""
    return user.has_role("admin") or set(person.roles) <= {"candidate"}


def _context(user: Account, person: Account, **extra: object) -> dict[str, object]:
    return {"person": person, "values": _values(person), "roles": list(person.roles),
            "role_labels": accounts.ROLE_LABELS, "may_set_roles": user.has_role("admin"),
            "may_change_email": may_change_email(user, person),
            "may_deactivate": user.has_role("admin") and user.username != person.username,
            **extra}


@router.get("/{username}")
def person_page(request: Request, username: str, user: PeopleClerk, created: str = "",
                saved: str = "") -> Response:
    person = _load(username)
    flash = FLASHES["created"] if created else FLASHES.get(saved) if saved else None
    if saved and flash is None:
        flash = FLASHES["saved"]
    return render(request, "admin/person.html", _context(user, person, flash=flash))


@router.post("/{username}/active")
async def set_active(request: Request, username: str, user: Admin) -> Response:
    """Deactivate (no sign-in, sessions ended, API tokens refused) or reactivate an account.
    An admin cannot deactivate themselves: there must stay someone who can undo it."""
    person = _load(username)
    active = (await form_values(request)).get("active") == "1"
    if not active and person.username == user.username:
        return render(request, "admin/person.html", _context(
            user, person, errors={"active": N_("You cannot deactivate your own account.")}),
            status_code=422)
    with session_scope() as session:
        accounts.set_active(session, username, active)
        if not active:
            access.expire_sessions(session, username)
    return redirect(request, f"/admin/people/{username}?saved="
                    + ("reactivated" if active else "deactivated"))


@router.post("/{username}")
async def save_person(request: Request, username: str, user: PeopleClerk,
                      background: BackgroundTasks) -> Response:
    person = _load(username)
    form = await form_values(request)
    roles = (await form_lists(request)).get("roles", [])
    values = {k: form.get(k, "") for k in (*PERSON_FIELDS, *accounts.CUSTOMER_FIELDS)}
    email_refused = False
    if not may_change_email(user, person):  # the form shows it, without a field
        email_refused = "email" in form and form["email"].strip().lower() != person.email.lower()
        values["email"] = person.email
    clean, errors = accounts.clean_person({k: values[k] for k in PERSON_FIELDS},
                                          today=date.today(), require_address=False,
                                          require_birth_date=False)
    customer, customer_errors = accounts.clean_customer(values)
    clean.update(customer)
    errors.update(customer_errors)
    if email_refused:
        errors["email"] = N_("Only an admin can change the e-mail address of someone who works on cases: staff, mentors, assessors, committee members and supervisors.")
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
            if clean.get("email", person.email).lower() != person.email.lower():
                background.add_task(_tell_old_address, username, person.email)
            return redirect(request, f"/admin/people/{username}?saved=1")
    return render(request, "admin/person.html", {
        **_context(user, person), "values": values,
        "roles": roles if may_set_roles else person.roles, "errors": errors}, status_code=422)


def _tell_old_address(username: str, old_email: str) -> None:
    """After the answer has gone out: the person hears at the old address that their mail now
    goes elsewhere (certflow.services.email_changes.tell_old_address)."""
    try:
        with session_scope() as session:
            email_changes.tell_old_address(session, get_settings(), username, old_email)
    except Exception:  # noqa: BLE001  (the change is saved; a mail server down loses only this notice)
        log.exception("the notice to %s's old e-mail address could not be sent", username)
