"""A person's own new e-mail address (certflow.services.email_changes): kept once per account
and only as a hash, confirmed once and only by its owner, never set when taken meanwhile."""

# ruff: noqa: F811  (fixtures imported by name)

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.services import accounts, email_changes
from certflow.services.access import digest
from certflow.settings import get_settings
from certflow.store.accounts import EmailChange
from tests.handlers._fixtures_records import engine, session  # noqa: F401

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def test_a_change_is_kept_once_per_account_and_only_as_a_hash(session: Session) -> None:
    accounts.create(session, "ann", "Ann", ["candidate"], email="ann@example.org", now=NOW)
    first = email_changes.ask(session, get_settings(), "ann", " New@Example.org ", now=NOW)
    second = email_changes.ask(session, get_settings(), "ann", "newer@example.org", now=NOW)
    [row] = session.scalars(select(EmailChange)).all()
    assert row.new_email == "newer@example.org" and row.token_hash == digest(second) != second
    assert row.expires_at == NOW + timedelta(hours=24)
    assert email_changes.link(session, first, NOW) is None
    assert email_changes.pending(session, "ann", NOW) == email_changes.PendingChange(
        "ann", "newer@example.org", NOW + timedelta(hours=24))
    assert email_changes.pending(session, "ann", NOW + timedelta(hours=24)) is None  # expired
    email_changes.cancel(session, "ann")
    assert email_changes.pending(session, "ann", NOW) is None


def test_confirming_works_once_for_its_owner(session: Session) -> None:
    accounts.create(session, "ann", "Ann", ["candidate"], email="ann@example.org", now=NOW)
    accounts.create(session, "bob", "Bob", ["candidate"], email="bob@example.org", now=NOW)
    token = email_changes.ask(session, get_settings(), "ann", "ann.new@example.org", now=NOW)
    assert email_changes.confirm(session, "bob", token, NOW) == "not_yours"
    assert email_changes.confirm(session, "ann", "made-up", NOW) == "unusable"
    assert email_changes.confirm(session, "ann", token, NOW + timedelta(hours=25)) == "unusable"
    token = email_changes.ask(session, get_settings(), "ann", "ann.new@example.org", now=NOW)
    assert email_changes.confirm(session, "ann", token, NOW) == "changed"
    assert accounts.get(session, "ann").email == "ann.new@example.org"
    assert email_changes.confirm(session, "ann", token, NOW) == "unusable"


def test_an_address_taken_meanwhile_is_not_set(session: Session) -> None:
    accounts.create(session, "ann", "Ann", ["candidate"], email="ann@example.org", now=NOW)
    token = email_changes.ask(session, get_settings(), "ann", "wanted@example.org", now=NOW)
    accounts.create(session, "bob", "Bob", ["candidate"], email="Wanted@example.org", now=NOW)
    assert email_changes.confirm(session, "ann", token, NOW) == "taken"
    assert accounts.get(session, "ann").email == "ann@example.org"
    assert session.scalars(select(EmailChange)).all() == []  # used up: it can never be confirmed
