"""People and their roles: creating accounts, self-registration, completing personal data.

An account's roles are the candidate groups of the process diagrams' lanes (one person may
hold several). Staff (office, coordinator, certifier, process owner, admin) may see and steer
every case; the others see their own work. The personal data kept is what the office needs
to invoice and to certify: name, e-mail, address, date of birth and language.

Everything here returns ``Account`` values, never store rows, so the web layer and the CLI
stay off the models. Bad input raises ``InvalidInput`` whose ``fields`` detail maps each form
field to an English message (translated where it is shown; see certflow.i18n).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import String, delete, func, select
from sqlalchemy import update as update_
from sqlalchemy.exc import IntegrityError
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from sqlalchemy.orm import Session

from certflow.errors import Conflict, InvalidInput, NotFound
from certflow.i18n import LANGUAGES, Message, N_
from certflow.store.accounts import PasswordReset, PendingSignUp
from certflow.store.models import User

ROLES = ("candidate", "professional", "office", "coordinator", "office_manager", "mentor", "assessor",
         "committee", "certifier", "supervisor", "process_owner", "admin")
# office_manager: the second escalation level (processes/*/escalation.json).
STAFF_ROLES = frozenset({"office", "coordinator", "office_manager", "certifier", "process_owner", "admin"})
ROLE_LABELS = {
    "candidate": N_("Candidate"), "professional": N_("Professional"), "office": N_("Office"),
    "coordinator": N_("Coordinator"), "office_manager": N_("Office manager"),
    "mentor": N_("Mentor"), "assessor": N_("Assessor"),
    "committee": N_("Committee"), "certifier": N_("Certifier"), "supervisor": N_("Supervisor"),
    "process_owner": N_("Process owner"), "admin": N_("Administrator"),
}
ADDRESS_FIELDS = ("street", "postal_code", "city", "country")
PERSON_FIELDS = ("display_name", "email", "language", "date_of_birth", *ADDRESS_FIELDS)
# What a name, street or city may be long (an invoice's address lines, the register's name).
MAX_TEXT = 200
MAX_POSTCODE = 20  # the world's longest are 10; a typed-out one with spaces stays under
CONTROL_CHARACTERS = N_("Remove the control characters (invisible characters such as a NUL "
                        "byte or a tab) from this field.")
# Characters nobody sees: a name of zero-width spaces is no name.
_INVISIBLE = frozenset({"Cf", "Zs", "Zl", "Zp"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NL_POSTCODE = re.compile(r"^[1-9][0-9]{3} ?[A-Za-z]{2}$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Account:
    username: str
    display_name: str
    email: str
    language: str
    roles: tuple[str, ...]
    is_staff: bool
    address: dict[str, str] = field(default_factory=dict)
    date_of_birth: date | None = None
    newsletter_opt_out: bool = False
    is_active: bool = True
    has_password: bool = False
    # Who is invoiced (billing.invoices): a private person, or an organisation with its
    # KvK number or OIN (its Peppol address) and VAT number.
    customer_type: str = "person"
    kvk_number: str | None = None
    oin: str | None = None
    vat_id: str | None = None

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


def account_of(user: User) -> Account:
    return Account(
        username=user.username, display_name=user.display_name, email=user.email,
        language=user.language, roles=tuple(user.groups or ()), is_staff=user.is_staff,
        address=dict(user.address or {}), date_of_birth=user.date_of_birth,
        newsletter_opt_out=user.newsletter_opt_out, is_active=user.is_active,
        has_password=user.password_hash is not None,
        customer_type=user.customer_type or "person", kvk_number=user.kvk_number, oin=user.oin,
        vat_id=user.vat_id,
    )


def get(session: Session, username: str) -> Account:
    return account_of(_row(session, username))


def _row(session: Session, username: str) -> User:
    user = session.get(User, username)
    if user is None:
        raise NotFound(Message(N_("no user '%(user)s'"), user=username))
    return user


def visible(value: str) -> str:
    """``value`` stripped; empty when nothing in it shows (spaces and format characters only,
    such as "\u200b\u200b"), so a required field refuses it as empty."""
    value = value.strip()
    return value if any(unicodedata.category(c) not in _INVISIBLE for c in value) else ""


def _has_control(value: str) -> bool:
    """A control character inside a one-line field (a NUL, a tab, a line break): PostgreSQL
    refuses a NUL, and an invoice's XML any other but tab and line breaks."""
    return any(unicodedata.category(c) == "Cc" for c in value)


def valid_email(email: str) -> bool:
    """An address certflow can send to: ``name@domain.tld``, at most 200 characters, and ASCII
    only (mail servers take a non-ASCII address only over SMTPUTF8, which Python's e-mail
    package does not write: every mail to it would fail; a domain is entered as punycode)."""
    email = email.strip()
    return bool(_EMAIL.match(email)) and len(email) <= 200 and email.isascii()


# An erased account's address (certflow.services.privacy): unique, and no mail reaches it.
ERASED_DOMAIN = "invalid.example"


def erased_address(tag: str) -> str:
    return f"geanonimiseerd-{tag}@{ERASED_DOMAIN}"


def is_erased(user: User) -> bool:
    """Whether the account was anonymised on an erasure request: nothing is sent to it."""
    return (user.email or "").lower().endswith("@" + ERASED_DOMAIN)


def by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def display_names(session: Session, usernames: Iterable[str | None]) -> dict[str, str]:
    """username -> full name, for the pages that show who holds a task (one read)."""
    wanted = sorted({u for u in usernames if u})  # None: unassigned
    if not wanted:
        return {}
    return dict(session.execute(select(User.username, User.display_name)
                                .where(User.username.in_(wanted))).tuples().all())


def members(session: Session, group: str, limit: int = 200) -> list[tuple[str, str]]:
    """The active accounts in ``group`` as (username, full name), by name: whom a task of that
    group can be handed to. Groups are a JSON list; its text holds the quoted name."""
    rows = session.execute(select(User.username, User.display_name, User.groups)
                           .where(User.is_active.is_(True),
                                  func.cast(User.groups, String).like(f'%"{group}"%'))
                           .order_by(User.display_name).limit(limit)).all()
    return [(u, name) for u, name, groups in rows if group in (groups or [])]


def list_accounts(session: Session, query: str = "", limit: int = 200) -> list[Account]:
    stmt = select(User).order_by(User.display_name).limit(limit)
    if query.strip():
        like = f"%{query.strip().lower()}%"
        stmt = stmt.where(func.lower(User.display_name).like(like) | func.lower(User.email).like(like)
                          | func.lower(User.username).like(like))
    return [account_of(u) for u in session.scalars(stmt)]


def parse_roles(values: Iterable[str]) -> list[str]:
    """``["mentor,assessor", "office"]`` -> ``["mentor", "assessor", "office"]``; an unknown
    role is refused rather than silently becoming a group nobody's tasks are in."""
    roles: list[str] = []
    for value in values:
        for part in value.split(","):
            role = part.strip().lower().replace(" ", "_").replace("-", "_")
            if not role:
                continue
            if role not in ROLES:
                raise InvalidInput(f"unknown role {role!r}; roles are: {', '.join(ROLES)}",
                                   fields={"roles": N_("Choose roles from the list.")})
            if role not in roles:
                roles.append(role)
    return roles


# -- validation of personal data ---------------------------------------------------------------

def clean_person(data: Mapping[str, Any], *, today: date, require_address: bool,
                 require_birth_date: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Check a person's data as a form gives it (strings); returns (clean values, errors).

    Only keys present in ``data`` are checked and returned, so a partial update (the office
    adding an address) leaves the rest alone.
    """
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    text = {k: visible(str(v)) for k, v in data.items() if v is not None}
    errors.update({k: CONTROL_CHARACTERS for k in PERSON_FIELDS if k in text and _has_control(text[k])})
    if "display_name" in text:
        if not text["display_name"]:
            errors["display_name"] = N_("Enter your full name.")
        elif len(text["display_name"]) > MAX_TEXT:
            errors["display_name"] = N_("The name can be at most 200 characters.")
        clean["display_name"] = text["display_name"]
    if "email" in text:
        if not valid_email(text["email"]):
            errors["email"] = N_("Enter an e-mail address like name@example.nl.")
        clean["email"] = text["email"].lower()
    if "language" in text:
        if text["language"] not in LANGUAGES:
            errors["language"] = N_("Choose Dutch or English.")
        clean["language"] = text["language"]
    if "date_of_birth" in text or require_birth_date:
        born, error = _birth_date(text.get("date_of_birth", ""), today, require_birth_date)
        if error:
            errors["date_of_birth"] = error
        clean["date_of_birth"] = born
    if any(f in text for f in ADDRESS_FIELDS) or require_address:
        address, address_errors = _address(text, require_address)
        errors.update(address_errors)
        clean["address"] = address
    return clean, errors


CUSTOMER_TYPES = ("person", "organisation")
CUSTOMER_FIELDS = ("customer_type", "kvk_number", "oin", "vat_id")


def clean_customer(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Check who is invoiced (the e-invoicing fields, as a form gives them); returns (clean
    values, errors). An organisation needs its KvK number (8 digits) or OIN (20 digits): its
    Peppol e-invoice is addressed to one of them. The VAT number is checked with python-stdnum
    (format and check digits of any EU country). A private person has none of these."""
    text = {k: visible(str(data.get(k) or "")) for k in CUSTOMER_FIELDS}
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {k: CONTROL_CHARACTERS for k in CUSTOMER_FIELDS if _has_control(text[k])}
    if len(text["vat_id"]) > 30:  # the longest EU VAT number is 14 characters; stdnum reads any
        errors["vat_id"] = N_("This is not a valid VAT number. A Dutch one looks like "
                              "NL123456789B01.")
        text["vat_id"] = ""
    kind = text["customer_type"] or "person"
    if kind not in CUSTOMER_TYPES:
        errors["customer_type"] = N_("Choose a private person or an organisation.")
    clean["customer_type"] = kind
    kvk = re.sub(r"[\s.]", "", text["kvk_number"])
    if kvk and not re.fullmatch(r"[0-9]{8}", kvk):
        errors["kvk_number"] = N_("A KvK number is 8 digits, for example 12345678.")
    oin = re.sub(r"\s", "", text["oin"])
    if oin and not re.fullmatch(r"[0-9]{20}", oin):
        errors["oin"] = N_("An OIN is 20 digits, for example 00000001003214345000.")
    vat = ""
    if text["vat_id"]:
        try:
            vat = eu_vat.validate(text["vat_id"])
        except StdnumError:
            errors["vat_id"] = N_("This is not a valid VAT number. A Dutch one looks like "
                                  "NL123456789B01.")
    # A bad KvK number or OIN is not empty: it already has its own message.
    if kind == "organisation" and not (kvk or oin):
        errors["kvk_number"] = N_("An organisation needs its KvK number or OIN: its e-invoice "
                                  "is addressed to it.")
    if kind == "person" and (kvk or oin or vat):
        errors["customer_type"] = N_("Only an organisation has a KvK number, OIN or VAT number. "
                                     "Choose organisation, or leave those fields empty.")
    clean.update(kvk_number=kvk or None, oin=oin or None, vat_id=vat or None)
    return clean, errors


def _birth_date(value: str, today: date, required: bool) -> tuple[date | None, str | None]:
    if not value:
        return None, N_("Enter your date of birth.") if required else None
    try:
        born = date.fromisoformat(value)
    except ValueError:
        return None, N_("Enter a real date, for example 1980-03-15.")
    if born >= today or born.year < 1900:
        return None, N_("The date of birth must be in the past.")
    if (today.year - born.year - ((today.month, today.day) < (born.month, born.day))) < 16:
        return None, N_("You must be at least 16 years old to register.")
    return born, None


def _address(text: Mapping[str, str], required: bool) -> tuple[dict[str, str], dict[str, str]]:
    address = {f: text.get(f, "") for f in ADDRESS_FIELDS}
    address["country"] = (address["country"] or "NL").upper()
    errors: dict[str, str] = {}
    if not any(address[f] for f in ("street", "postal_code", "city")) and not required:
        return {}, {}
    if not address["street"]:
        errors["street"] = N_("Enter the street and house number.")
    elif len(address["street"]) > MAX_TEXT:
        errors["street"] = N_("Use at most 200 characters.")
    if not address["city"]:
        errors["city"] = N_("Enter the town or city.")
    elif len(address["city"]) > MAX_TEXT:
        errors["city"] = N_("Use at most 200 characters.")
    if address["country"] == "NL":
        if not _NL_POSTCODE.match(address["postal_code"]):
            errors["postal_code"] = N_("Enter a Dutch postcode like 3511 AA.")
        else:
            pc = address["postal_code"].replace(" ", "").upper()
            address["postal_code"] = f"{pc[:4]} {pc[4:]}"
    elif not address["postal_code"]:
        errors["postal_code"] = N_("Enter the postcode.")
    elif len(address["postal_code"]) > MAX_POSTCODE:
        errors["postal_code"] = N_("A postcode has at most 20 characters.")
    if not re.fullmatch(r"[A-Z]{2}", address["country"]):
        errors["country"] = N_("Enter a two-letter country code such as NL or BE.")
    return address, errors


# -- creating and changing accounts ------------------------------------------------------------

EMAIL_TAKEN = N_("An account with this e-mail address exists.")

def create(session: Session, username: str, display_name: str, roles: Iterable[str], *,
           email: str | None = None, is_staff: bool | None = None, language: str = "nl",
           address: dict[str, str] | None = None, date_of_birth: date | None = None,
           password_hash: str | None = None, now: datetime) -> Account:
    """Create an account (an admin's act, the CLI's, or the demo's). Staff by default when a
    role is a staff role."""
    role_list = parse_roles(roles)
    if not _USERNAME.match(username):
        raise InvalidInput("a username is 1-100 lowercase letters, digits, '.', '_' or '-'",
                           fields={"username": N_("Use 1-100 lowercase letters or digits.")})
    if session.get(User, username) is not None:
        raise Conflict(f"user {username!r} exists",
                       fields={"username": N_("This username is taken.")})
    address_email = (email or f"{username}@example.org").strip().lower()
    if by_email(session, address_email) is not None:
        raise Conflict(f"an account with e-mail {address_email} exists", fields={"email": EMAIL_TAKEN})
    user = User(
        username=username, display_name=display_name, email=address_email, language=language,
        is_staff=bool(STAFF_ROLES & set(role_list)) if is_staff is None else is_staff,
        groups=role_list, address=address or {}, date_of_birth=date_of_birth,
        password_hash=password_hash, created_at=now,
    )
    _write(session, user)
    drop_sign_ups(session, address_email)
    return account_of(user)


def drop_sign_ups(session: Session, email: str) -> None:
    """Delete the sign-ups waiting for confirmation with ``email``, now that an account has it.
    A sign-up is someone's without an account (certflow.services.sign_ups): its link can no
    longer make one, and its name, address and date of birth are not the account holder's to
    see (they were in the export of whatever account held the address). Called whenever an
    account gets an address, so no account's address has a sign-up waiting."""
    session.execute(delete(PendingSignUp).where(
        func.lower(PendingSignUp.email) == email.strip().lower()))


def _write(session: Session, new: User | None = None) -> None:
    """Flush an account's row. The checks before it read what was committed: a username or
    address another request takes at the same moment (two clicks on "Aanmaken", two accounts
    saved at once) only shows here, as the second insert waits for the first one's commit.
    Refused as those checks refuse it, in a savepoint so that the caller's session goes on;
    ``new``, an account being made, is added in it, so that a refused one leaves the session
    with the savepoint (it is not inserted again by the caller's next flush)."""
    try:
        with session.begin_nested():
            if new is not None:
                session.add(new)
            session.flush()
    except IntegrityError as exc:
        text = str(exc.orig)
        if "uq_users_email" in text or "users.email" in text:
            raise Conflict("e-mail address in use", fields={"email": EMAIL_TAKEN}) from None
        if "pk_users" in text or "users.username" in text:
            raise Conflict("username in use", fields={"username": N_("This username is taken.")}) from None
        raise


def free_username(session: Session, email: str) -> str:
    """A username from the e-mail address (``jan.devries``), numbered when taken."""
    base = re.sub(r"[^a-z0-9._-]", "", email.split("@")[0].lower())[:40].strip("._-") or "user"
    base = base if len(base) >= 2 else f"{base}0"
    name = base
    while session.get(User, name) is not None:
        name = f"{base}{secrets.randbelow(9000) + 1000}"
    return name


def update(session: Session, username: str, changes: Mapping[str, Any]) -> Account:
    """Apply cleaned changes (from ``clean_person``; roles via ``set_roles``). A new e-mail
    address takes effect at once: this is staff's and the CLI's direct change, and the last
    step of a confirmed one; a person's own new address waits for the link mailed to it
    (certflow.services.email_changes)."""
    user = _row(session, username)
    new_email = "email" in changes and changes["email"] != user.email
    if new_email:
        other = by_email(session, changes["email"])
        if other is not None and other.username != username:
            raise Conflict("e-mail address in use", fields={"email": EMAIL_TAKEN})
        # A reset link goes to the address it was asked for: none sent before the change
        # stays usable after it.
        session.execute(update_(PasswordReset).where(PasswordReset.username == username,
                                                     PasswordReset.used_at.is_(None))
                        .values(used_at=datetime.now(timezone.utc)))
    for key in ("display_name", "email", "language", "date_of_birth", "address",
                "newsletter_opt_out", *CUSTOMER_FIELDS):
        if key in changes:
            setattr(user, key, changes[key])
    _write(session)
    if new_email:
        drop_sign_ups(session, changes["email"])
    return account_of(user)


def set_roles(session: Session, username: str, roles: Iterable[str],
              is_staff: bool | None = None) -> Account:
    user = _row(session, username)
    user.groups = parse_roles(roles)
    user.is_staff = bool(STAFF_ROLES & set(user.groups)) if is_staff is None else is_staff
    session.flush()
    return account_of(user)


def set_active(session: Session, username: str, active: bool) -> Account:
    user = _row(session, username)
    user.is_active = active
    session.flush()
    return account_of(user)
