"""Accounts as people and the office notice them: who gets which roles (and so which work and
whether they are staff), which personal data is accepted and how it is stored, the refusal
each bad field gets, taken usernames and e-mail addresses, and what an update may change.

On an in-memory database copied per test: no process is deployed, so the whole file runs in a
second (bench/mutation.py runs it per mutant of certflow/services/accounts.py)."""

# ruff: noqa: F811  (fixtures imported by name)

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.errors import Conflict, InvalidInput, NotFound
from certflow.services import accounts
from certflow.services.accounts import clean_customer, clean_person, parse_roles
from certflow.store.accounts import PendingSignUp
from certflow.store.models import User
from tests.handlers._fixtures_records import engine, session  # noqa: F401

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
TODAY = date(2026, 11, 30)
ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}


def make(session: Session, username: str, roles: list[str] | tuple[str, ...] = ("candidate",),
         **kwargs: Any) -> accounts.Account:
    return accounts.create(session, username, username.title(), roles, now=NOW, **kwargs)


def person(data: dict[str, Any], *, address: bool = False,
           birth: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    return clean_person(data, today=TODAY, require_address=address, require_birth_date=birth)


# -- roles ---------------------------------------------------------------------------------------
def test_roles_typed_as_the_office_types_them() -> None:
    assert parse_roles(["Mentor, assessor", " process owner", "office-manager", "", "mentor,,committee"]) \
        == ["mentor", "assessor", "process_owner", "office_manager", "committee"]


def test_an_unknown_role_is_refused_naming_it_and_the_roles() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_roles(["mentor", "boss"])
    assert refused.value.message.startswith("unknown role 'boss'; roles are: candidate, professional, ")
    assert refused.value.message.endswith(", process_owner, admin")
    assert refused.value.details["fields"] == {"roles": "Choose roles from the list."}


def test_a_role_grants_staff_exactly_when_it_is_a_staff_role(session: Session) -> None:
    staff = {"office", "coordinator", "office_manager", "certifier", "process_owner", "admin"}
    for role in accounts.ROLES:
        assert make(session, f"u-{role}".replace("_", "-"), [role]).is_staff == (role in staff), role
    both = make(session, "mila", ["mentor", "office"])
    assert both.is_staff and both.roles == ("mentor", "office")
    assert both.has_role("committee", "office") and not both.has_role("committee", "admin")
    assert not both.has_role()


def test_staff_can_be_set_against_the_roles(session: Session) -> None:
    assert make(session, "olga", ["office"], is_staff=False).is_staff is False
    assert make(session, "kees", ["committee"], is_staff=True).is_staff is True


def test_new_roles_replace_the_old_ones_and_staff_follows(session: Session) -> None:
    make(session, "mila", ["mentor"])
    promoted = accounts.set_roles(session, "mila", ["mentor, office"])
    assert promoted.roles == ("mentor", "office") and promoted.is_staff
    assert accounts.get(session, "mila") == promoted
    demoted = accounts.set_roles(session, "mila", ["assessor"])
    assert demoted.roles == ("assessor",) and not demoted.is_staff
    assert accounts.set_roles(session, "mila", ["assessor"], is_staff=True).is_staff is True
    assert accounts.set_roles(session, "mila", ["office"], is_staff=False).is_staff is False
    with pytest.raises(InvalidInput):
        accounts.set_roles(session, "mila", ["boss"])
    assert accounts.get(session, "mila").roles == ("office",)
    with pytest.raises(NotFound, match="no user 'nobody'"):
        accounts.set_roles(session, "nobody", ["mentor"])


# -- creating accounts ---------------------------------------------------------------------------
def test_a_new_account_keeps_what_it_was_given(session: Session) -> None:
    made = accounts.create(
        session, "cas", "Cas de Vries", ["candidate"], email="  Cas@Example.NL ", language="en",
        address=ADDRESS, date_of_birth=date(1980, 3, 15), password_hash="$argon2id$x", now=NOW)
    expected = accounts.Account(
        username="cas", display_name="Cas de Vries", email="cas@example.nl", language="en",
        roles=("candidate",), is_staff=False, address=ADDRESS, date_of_birth=date(1980, 3, 15),
        newsletter_opt_out=False, is_active=True, has_password=True, customer_type="person")
    assert made == expected
    session.expire_all()
    assert accounts.get(session, "cas") == expected
    assert session.get(User, "cas").created_at == NOW  # type: ignore[union-attr]


def test_defaults_of_a_new_account(session: Session) -> None:
    made = accounts.create(session, "bea", "Bea", [], now=NOW)
    assert (made.email, made.language, made.roles, made.is_staff, made.address,
            made.date_of_birth, made.has_password, made.is_active) \
        == ("bea@example.org", "nl", (), False, {}, None, False, True)
    # The row as stored is what a person's data export shows: an empty address, not null.
    session.expire_all()
    assert session.get(User, "bea").address == {}  # type: ignore[union-attr]


@pytest.mark.parametrize("username", ["", "Cas", "-cas", "cas de vries", "cas@x", "a" * 101])
def test_a_bad_username_is_refused(session: Session, username: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        make(session, username)
    assert refused.value.message == "a username is 1-100 lowercase letters, digits, '.', '_' or '-'"
    assert refused.value.details["fields"] == {"username": "Use 1-100 lowercase letters or digits."}


@pytest.mark.parametrize("username", ["c", "0cas", "jan.de_vries-2", "a" * 100])
def test_good_usernames_are_taken(session: Session, username: str) -> None:
    assert make(session, username).username == username


def test_a_taken_username_or_email_is_refused_and_nothing_is_made(session: Session) -> None:
    make(session, "cas", email="cas@example.nl")
    with pytest.raises(Conflict) as taken:
        make(session, "cas", email="other@example.nl")
    assert taken.value.message == "user 'cas' exists"
    assert taken.value.details["fields"] == {"username": "This username is taken."}
    with pytest.raises(Conflict) as in_use:
        make(session, "bea", email=" CAS@example.NL")
    assert in_use.value.message == "an account with e-mail cas@example.nl exists"
    assert in_use.value.details["fields"] == {"email": "An account with this e-mail address exists."}
    with pytest.raises(InvalidInput):
        make(session, "bea", ["boss"])
    assert [a.username for a in accounts.list_accounts(session)] == ["cas"]


def test_unknown_account_is_named(session: Session) -> None:
    with pytest.raises(NotFound) as missing:
        accounts.get(session, "nobody")
    assert missing.value.message == "no user 'nobody'"


def test_an_account_holds_the_invoicing_details_it_was_given(session: Session) -> None:
    make(session, "acme")
    account = accounts.update(session, "acme", {
        "customer_type": "organisation", "kvk_number": "12345678", "oin": None,
        "vat_id": "NL004495445B01"})
    assert (account.customer_type, account.kvk_number, account.oin, account.vat_id) \
        == ("organisation", "12345678", None, "NL004495445B01")
    public_body = accounts.update(session, "acme", {"kvk_number": None,
                                                     "oin": "00000001003214345000"})
    session.expire_all()
    assert accounts.get(session, "acme") == public_body
    assert (public_body.kvk_number, public_body.oin) == (None, "00000001003214345000")


# -- finding accounts ----------------------------------------------------------------------------
def test_an_email_is_found_whatever_its_case_and_spaces(session: Session) -> None:
    make(session, "cas", email="cas@example.nl")
    found = accounts.by_email(session, "  CAS@Example.nl ")
    assert found is not None and found.username == "cas"
    assert accounts.by_email(session, "bea@example.nl") is None
    # An address kept with capitals (as an older version stored it) is found all the same.
    session.get(User, "cas").email = "Cas@Example.NL"  # type: ignore[union-attr]
    found = accounts.by_email(session, "cas@example.nl")
    assert found is not None and found.username == "cas"


def _people_search(session: Session) -> None:
    accounts.create(session, "dd", "Dirk", [], email="dirk@example.nl", now=NOW)
    accounts.create(session, "zwartje", "Carla", [], email="carla@example.nl", now=NOW)
    accounts.create(session, "zz", "Anna Zwart", [], email="anna@example.nl", now=NOW)
    accounts.create(session, "bb", "Bert Bakker", [], email="post@zwart.nl", now=NOW)

    def names(query: str = "", **kw: int) -> list[str]:
        return [a.display_name for a in accounts.list_accounts(session, query, **kw)]

    assert names() == ["Anna Zwart", "Bert Bakker", "Carla", "Dirk"]
    assert names("  ") == names()
    # Found by name (with capitals), by e-mail address and by username, whatever is typed.
    assert names(" ZWART ") == ["Anna Zwart", "Bert Bakker", "Carla"]
    assert names("zwart") == ["Anna Zwart", "Bert Bakker", "Carla"]
    assert names("dirk") == ["Dirk"]
    assert names(limit=2) == ["Anna Zwart", "Bert Bakker"]


def test_the_people_list_is_by_name_and_searches_name_email_and_username(session: Session) -> None:
    _people_search(session)


@pytest.mark.integration
def test_the_people_search_ignores_capitals_on_postgresql(pg_url: str) -> None:
    """SQLite's LIKE ignores the case of ASCII letters by itself; PostgreSQL's does not."""
    from certflow.store.db import session_scope

    with session_scope() as session:
        _people_search(session)


def test_the_people_list_shows_two_hundred_at_most(session: Session) -> None:
    session.add_all(User(username=f"u{i:03}", display_name=f"U{i:03}", email=f"u{i}@example.nl",
                         groups=[], created_at=NOW) for i in range(201))
    session.flush()
    listed = accounts.list_accounts(session)
    assert len(listed) == 200 and listed[-1].display_name == "U199"


@pytest.mark.parametrize(("email", "valid"), [
    (" cas@example.nl ", True), ("cas@example", False), ("cas example@x.nl", False),
    ("@example.nl", False), ("cas@@example.nl", False),
    ("c@" + "e" * 195 + ".nl", True), ("c@" + "e" * 196 + ".nl", False),
    # Mail to a non-ASCII address cannot be sent (no SMTPUTF8): refused where it is entered.
    ("josé@example.nl", False), ("jose@exämple.nl", False), ("jose@xn--exmple-cua.nl", True),
])
def test_what_counts_as_an_email_address(email: str, valid: bool) -> None:
    assert accounts.valid_email(email) is valid


# -- usernames made from an e-mail address -----------------------------------------------------------
@pytest.mark.parametrize(("email", "username"), [
    ("Jan.de-Vries@example.nl", "jan.de-vries"), ("j+x@example.nl", "jx"),
    ("x@example.nl", "x0"), ("++@example.nl", "user"), ("._j_._@example.nl", "j0"),
    ("a" * 50 + "@example.nl", "a" * 40), ("a" * 39 + ".b@example.nl", "a" * 39),
])
def test_a_username_from_an_email_address(session: Session, email: str, username: str) -> None:
    assert accounts.free_username(session, email) == username


def test_a_taken_username_gets_four_digits(session: Session) -> None:
    make(session, "jan")
    name = accounts.free_username(session, "jan@example.nl")
    assert name.startswith("jan") and len(name) == 7 and 1000 <= int(name[3:]) <= 9999
    assert make(session, name).username == name


def test_numbers_are_tried_until_one_is_free(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([0, 0, 8999])

    def randbelow(n: int) -> int:
        assert n == 9000
        return next(draws)

    monkeypatch.setattr(accounts.secrets, "randbelow", randbelow)
    make(session, "jan")
    make(session, "jan1000")
    assert accounts.free_username(session, "jan@example.nl") == "jan9999"


# -- personal data -------------------------------------------------------------------------------
def test_a_complete_registration_is_cleaned() -> None:
    clean, errors = person({
        "display_name": "  Cas de Vries ", "email": " Cas@Example.NL ", "language": "en",
        "date_of_birth": "1980-03-15", "street": "Oudegracht 1", "postal_code": "3511aa",
        "city": "Utrecht", "country": "nl", "ignored": "x"}, address=True, birth=True)
    assert errors == {}
    assert clean == {"display_name": "Cas de Vries", "email": "cas@example.nl", "language": "en",
                     "date_of_birth": date(1980, 3, 15),
                     "address": {"street": "Oudegracht 1", "postal_code": "3511 AA",
                                 "city": "Utrecht", "country": "NL"}}


def test_only_what_is_given_is_checked() -> None:
    assert person({"language": "nl", "date_of_birth": None}) == ({"language": "nl"}, {})
    assert person({}) == ({}, {})


def test_each_bad_field_gets_its_message() -> None:
    clean, errors = person({"display_name": " ", "email": "cas@", "language": "de",
                            "date_of_birth": "15-03-1980", "street": "", "postal_code": "351 AA",
                            "city": " "}, address=True)
    assert errors == {
        "display_name": "Enter your full name.",
        "email": "Enter an e-mail address like name@example.nl.",
        "language": "Choose Dutch or English.",
        "date_of_birth": "Enter a real date, for example 1980-03-15.",
        "street": "Enter the street and house number.",
        "city": "Enter the town or city.",
        "postal_code": "Enter a Dutch postcode like 3511 AA.",
    }
    assert clean["display_name"] == "" and clean["date_of_birth"] is None


@pytest.mark.parametrize(("name", "error"), [
    ("n" * 200, None), ("n" * 201, "The name can be at most 200 characters.")])
def test_a_name_of_at_most_200_characters(name: str, error: str | None) -> None:
    clean, errors = person({"display_name": name})
    assert errors.get("display_name") == error and clean["display_name"] == name


@pytest.mark.parametrize(("email", "ok"), [
    ("c@" + "e" * 195 + ".nl", True), ("c@" + "e" * 196 + ".nl", False),
    ("cas@example", False), ("cas de@example.nl", False)])
def test_an_email_of_at_most_200_characters(email: str, ok: bool) -> None:
    assert ("email" not in person({"email": email})[1]) is ok


@pytest.mark.parametrize(("born", "required", "error"), [
    ("", True, "Enter your date of birth."),
    ("", False, None),
    ("1980-02-30", False, "Enter a real date, for example 1980-03-15."),
    ("2026-11-30", False, "The date of birth must be in the past."),
    ("2027-01-01", False, "The date of birth must be in the past."),
    ("1899-12-31", False, "The date of birth must be in the past."),
    ("1900-01-01", False, None),
    ("2010-11-30", False, None),
    ("2010-12-01", False, "You must be at least 16 years old to register."),
    ("2011-01-01", False, "You must be at least 16 years old to register."),
    ("2010-11-29", False, None),
    ("2010-10-31", False, None),
])
def test_date_of_birth(born: str, required: bool, error: str | None) -> None:
    clean, errors = person({"date_of_birth": born}, birth=required)
    assert errors.get("date_of_birth") == error
    assert clean["date_of_birth"] == (None if error or not born else date.fromisoformat(born))


def test_a_required_date_of_birth_left_out_is_asked_for() -> None:
    assert person({}, birth=True) == ({"date_of_birth": None},
                                      {"date_of_birth": "Enter your date of birth."})


def test_an_address_is_only_asked_for_where_it_is_required() -> None:
    assert person({"country": "BE"}) == ({"address": {}}, {})
    assert person({"street": "", "city": ""}) == ({"address": {}}, {})
    clean, errors = person({}, address=True)
    assert errors == {"street": "Enter the street and house number.",
                      "city": "Enter the town or city.",
                      "postal_code": "Enter a Dutch postcode like 3511 AA."}
    assert clean["address"] == {"street": "", "postal_code": "", "city": "", "country": "NL"}


def test_a_partial_address_is_checked_whole() -> None:
    clean, errors = person({"city": "Utrecht"})
    assert set(errors) == {"street", "postal_code"}
    assert clean["address"]["country"] == "NL"


@pytest.mark.parametrize(("postcode", "country", "stored", "error"), [
    ("3511AA", "NL", "3511 AA", None), ("3511 aa", "", "3511 AA", None),
    ("0511 AA", "NL", None, "postal_code"), ("3511  AA", "NL", None, "postal_code"),
    ("3511 AAB", "NL", None, "postal_code"), ("x3511 AA", "NL", None, "postal_code"),
    ("1000", "be", "1000", None), ("", "BE", None, "postal_code"),
    ("10115", "Deu", None, "country"), ("10115", "D1", None, "country"),
])
def test_postcodes_dutch_and_foreign(postcode: str, country: str, stored: str | None,
                                     error: str | None) -> None:
    clean, errors = person({"street": "Straat 1", "city": "Stad", "postal_code": postcode,
                            "country": country})
    assert list(errors) == ([error] if error else [])
    if stored:
        assert clean["address"]["postal_code"] == stored
    assert clean["address"]["country"] == (country.upper() or "NL")
    if error == "postal_code":
        assert errors[error] == ("Enter the postcode." if country == "BE"
                                 else "Enter a Dutch postcode like 3511 AA.")
    if error == "country":
        assert errors[error] == "Enter a two-letter country code such as NL or BE."


# -- who is invoiced ---------------------------------------------------------------------------------
def test_a_private_person_by_default() -> None:
    assert clean_customer({}) == ({"customer_type": "person", "kvk_number": None, "oin": None,
                                   "vat_id": None}, {})


def test_an_organisation_with_its_numbers_cleaned() -> None:
    clean, errors = clean_customer({"customer_type": " organisation", "kvk_number": "1234 56.78",
                                    "oin": "0000 0001 0032 1434 5000", "vat_id": "nl 0044.95445.b01"})
    assert errors == {}
    assert clean == {"customer_type": "organisation", "kvk_number": "12345678",
                     "oin": "00000001003214345000", "vat_id": "NL004495445B01"}


def test_an_organisation_needs_a_kvk_number_or_an_oin() -> None:
    assert clean_customer({"customer_type": "organisation", "oin": "00000001003214345000"})[1] == {}
    assert clean_customer({"customer_type": "organisation", "vat_id": "NL004495445B01"})[1] == {
        "kvk_number": "An organisation needs its KvK number or OIN: its e-invoice is addressed to it."}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("kvk_number", "1234567", "A KvK number is 8 digits, for example 12345678."),
    ("kvk_number", "123456789", "A KvK number is 8 digits, for example 12345678."),
    ("kvk_number", "1234567a", "A KvK number is 8 digits, for example 12345678."),
    ("oin", "0000000100321434500", "An OIN is 20 digits, for example 00000001003214345000."),
    ("oin", "000000010032143450001", "An OIN is 20 digits, for example 00000001003214345000."),
    ("oin", "0000.0001003214345000", "An OIN is 20 digits, for example 00000001003214345000."),
    ("vat_id", "NL004495446B01",
     "This is not a valid VAT number. A Dutch one looks like NL123456789B01."),
])
def test_a_bad_number_is_refused_with_its_own_message(field: str, value: str, message: str) -> None:
    # The bad number alone: no "needs a KvK number or OIN" on top of a bad one.
    data = {"customer_type": "organisation", "kvk_number": "" if field == "oin" else "12345678"}
    assert clean_customer({**data, field: value})[1] == {field: message}


@pytest.mark.parametrize("field", ["kvk_number", "oin", "vat_id"])
def test_a_private_person_has_no_organisation_numbers(field: str) -> None:
    value = {"kvk_number": "12345678", "oin": "00000001003214345000", "vat_id": "NL004495445B01"}[field]
    assert clean_customer({"customer_type": "person", field: value})[1] == {
        "customer_type": "Only an organisation has a KvK number, OIN or VAT number. Choose "
                         "organisation, or leave those fields empty."}


def test_an_unknown_kind_of_customer_is_refused() -> None:
    clean, errors = clean_customer({"customer_type": "company", "kvk_number": "12345678"})
    assert errors == {"customer_type": "Choose a private person or an organisation."}
    assert clean["customer_type"] == "company"


# -- changing accounts ---------------------------------------------------------------------------
def test_an_update_changes_the_personal_data_it_is_given(session: Session) -> None:
    make(session, "cas", email="cas@example.nl", address=ADDRESS)
    changed = accounts.update(session, "cas", {
        "display_name": "Cas V.", "email": "c.v@example.nl", "language": "en",
        "date_of_birth": date(1980, 3, 15), "newsletter_opt_out": True})
    session.expire_all()
    assert accounts.get(session, "cas") == changed
    assert (changed.display_name, changed.email, changed.language, changed.date_of_birth,
            changed.newsletter_opt_out, changed.address) \
        == ("Cas V.", "c.v@example.nl", "en", date(1980, 3, 15), True, ADDRESS)
    assert accounts.update(session, "cas", {"address": {}}).address == {}


def test_an_update_cannot_make_anyone_staff_or_change_a_password(session: Session) -> None:
    make(session, "cas")
    changed = accounts.update(session, "cas", {
        "is_staff": True, "groups": ["admin"], "password_hash": "x", "is_active": False,
        "username": "root"})
    assert (changed.username, changed.is_staff, changed.roles, changed.has_password,
            changed.is_active) == ("cas", False, ("candidate",), False, True)


def test_an_email_address_of_someone_else_is_refused(session: Session) -> None:
    make(session, "cas", email="cas@example.nl")
    make(session, "bea", email="bea@example.nl")
    with pytest.raises(Conflict) as in_use:
        accounts.update(session, "bea", {"email": "cas@example.nl", "display_name": "Cas"})
    assert in_use.value.message == "e-mail address in use"
    assert in_use.value.details["fields"] == {"email": "An account with this e-mail address exists."}
    assert accounts.get(session, "bea").display_name == "Bea"
    # One's own address, also in other capitals, is not someone else's.
    assert accounts.update(session, "bea", {"email": "bea@example.nl"}).email == "bea@example.nl"
    assert accounts.update(session, "bea", {"email": "BEA@example.nl"}).email == "BEA@example.nl"
    with pytest.raises(NotFound):
        accounts.update(session, "nobody", {"display_name": "X"})


def _sign_up(session: Session, email: str) -> None:
    session.add(PendingSignUp(token_hash=email[:64], email=email, display_name="Someone",
                              language="nl", address={"city": "Utrecht"}, date_of_birth=None,
                              password_hash="x", created_at=NOW,
                              expires_at=NOW + timedelta(hours=24)))
    session.flush()


def _sign_ups(session: Session) -> list[str]:
    return sorted(session.scalars(select(PendingSignUp.email)))


def test_an_account_getting_an_address_deletes_the_sign_ups_waiting_with_it(session: Session) -> None:
    """A sign-up is someone's without an account: once an account has its address it can make
    none, and it is not the account holder's to see (it was in their export)."""
    for email in ("ann@example.org", "Bob@Example.org", "other@example.org"):
        _sign_up(session, email)
    accounts.create(session, "ann", "Ann", ["candidate"], email="ann@example.org", now=NOW)
    assert _sign_ups(session) == ["Bob@Example.org", "other@example.org"]
    accounts.update(session, "ann", {"display_name": "Ann B."})  # no new address: nothing
    assert _sign_ups(session) == ["Bob@Example.org", "other@example.org"]
    accounts.update(session, "ann", {"email": "bob@example.org"})
    assert _sign_ups(session) == ["other@example.org"]


def test_a_deactivated_account_is_kept_and_can_come_back(session: Session) -> None:
    make(session, "cas")
    assert accounts.set_active(session, "cas", False).is_active is False
    session.expire_all()
    assert accounts.get(session, "cas").is_active is False
    assert accounts.set_active(session, "cas", True).is_active is True
    with pytest.raises(NotFound):
        accounts.set_active(session, "nobody", False)


def test_an_address_mail_cannot_be_sent_to_is_refused_with_the_address_message() -> None:
    clean, errors = person({"email": "josé@example.nl"})
    assert errors == {"email": "Enter an e-mail address like name@example.nl."}


# -- lengths, control and invisible characters ---------------------------------------------
@pytest.mark.parametrize(("field", "value", "error"), [
    ("street", "S" * 201, "Use at most 200 characters."),
    ("city", "U" * 201, "Use at most 200 characters."),
    ("street", "Straat 1\x00", "Remove the control characters"),
    ("street", "Straat\x0b1", "Remove the control characters"),
    ("city", "Utr\x1fecht", "Remove the control characters"),
    ("street", "\u200b\u200b", "Enter the street and house number."),
    ("city", " \u2060\ufeff ", "Enter the town or city."),
])
def test_an_address_line_is_capped_and_refuses_what_nobody_types(field: str, value: str, error: str) -> None:
    """A 100,000-character street made a 100 KB invoice; a NUL in it an incident (the invoice
    XML refuses it); a street of zero-width spaces was an address nobody can deliver to."""
    _, errors = person({**ADDRESS, field: value}, address=True)
    assert errors[field].startswith(error)


def test_a_foreign_postcode_is_capped() -> None:
    _, errors = person({**ADDRESS, "country": "BE", "postal_code": "1" * 21}, address=True)
    assert errors == {"postal_code": "A postcode has at most 20 characters."}
    assert person({**ADDRESS, "country": "BE", "postal_code": "B-1000"}, address=True)[1] == {}


@pytest.mark.parametrize("name", ["\u200b\u200b", "\u00a0\u200d", "Jan\x00Jansen", "A" * 201])
def test_a_name_of_nothing_visible_or_with_a_control_character_is_refused(name: str) -> None:
    assert "display_name" in person({"display_name": name})[1]


def test_a_name_with_a_zero_width_joiner_inside_is_kept() -> None:
    assert person({"display_name": "Anne\u200dMarie"}) == ({"display_name": "Anne\u200dMarie"}, {})


def test_customer_fields_refuse_control_characters_and_long_vat_numbers() -> None:
    assert "vat_id" in clean_customer({"customer_type": "organisation", "kvk_number": "12345678",
                                       "vat_id": "NL" + "1" * 10_000})[1]
    assert "kvk_number" in clean_customer({"customer_type": "organisation", "kvk_number": "1234\x005678"})[1]
    assert clean_customer({"customer_type": "\u200b"})[0]["customer_type"] == "person"


def test_the_members_of_a_group_by_name_on_both_databases(any_db: str) -> None:
    """Whom a task can be handed to: the active accounts holding the role, not those whose role
    merely starts the same, by name."""
    from certflow.bootstrap import create_schema
    from certflow.store.db import session_scope
    from tests.support import create_user

    create_schema(any_db)
    with session_scope() as s:
        create_user(s, "otto", "Otto Bakker", ["office", "coordinator"], is_staff=True)
        create_user(s, "olga", "Olga Aarts", ["office"], is_staff=True)
        create_user(s, "omar", "Omar Gone", ["office"], is_staff=True)
        create_user(s, "oma", "Oma Manager", ["office_manager"], is_staff=True)
        accounts.set_active(s, "omar", False)
    with session_scope() as s:
        assert accounts.members(s, "office") == [("olga", "Olga Aarts"), ("otto", "Otto Bakker")]
        assert accounts.members(s, "office_manager") == [("oma", "Oma Manager")]
        assert accounts.members(s, "offic") == []

