"""Two requests taking one e-mail address or username at once, on PostgreSQL
(certflow.services.accounts): an admin's double click on "Aanmaken", or two people saving the
same address. The second insert waits for the first one's commit and then broke the unique
index, a 500; it is refused as the address check refuses a taken address, with the field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from certflow.errors import Conflict
from tests.races import while_pending

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


@pytest.fixture
def db(pg_url: str) -> str:
    from certflow.bootstrap import create_schema
    from certflow.services import accounts
    from certflow.store.db import session_scope

    create_schema(pg_url)
    with session_scope() as s:
        accounts.create(s, "olga", "Olga Aarts", ["office"], email="olga@cmi.example", now=NOW)
    return pg_url


def create(username: str, email: str) -> Callable[[Any], Any]:
    from certflow.services import accounts

    return lambda s: accounts.create(s, username, "Ann de Vries", ["candidate"], email=email, now=NOW)


def second(step: Callable[[Any], Any]) -> Callable[[], Any]:
    from certflow.store.db import session_scope

    def run() -> Any:
        with session_scope() as s:
            return step(s)

    return run


def test_an_account_created_twice_at_once_is_refused_on_its_address(db: str) -> None:
    refused = while_pending(create("ann", "ann@example.nl"), second(create("ann2", "ann@example.nl")))
    assert isinstance(refused, Conflict), refused
    assert refused.details["fields"] == {"email": "An account with this e-mail address exists."}


def test_an_account_created_twice_at_once_is_refused_on_its_username(db: str) -> None:
    refused = while_pending(create("ann", "ann@example.nl"), second(create("ann", "ann@elders.nl")))
    assert isinstance(refused, Conflict), refused
    assert refused.details["fields"] == {"username": "This username is taken."}


def test_an_address_taken_by_another_account_meanwhile_is_refused_on_save(db: str) -> None:
    from certflow.services import accounts
    from certflow.store.db import session_scope

    refused = while_pending(create("ann", "ann@example.nl"),
                            second(lambda s: accounts.update(s, "olga", {"email": "ann@example.nl"})))
    assert isinstance(refused, Conflict), refused
    assert refused.details["fields"] == {"email": "An account with this e-mail address exists."}
    with session_scope() as s:
        assert accounts.get(s, "olga").email == "olga@cmi.example"


def test_two_sign_ups_of_one_address_at_once_leave_one_and_both_end_cleanly(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sign-ups of one address at the same moment (a double click, two tabs): the first
    one's row was not yet committed when the second deleted the address's earlier sign-ups,
    so the second's insert waited on the unique index and then broke it (logged, no link
    mailed). The second replaces the first in one statement; only its link works."""
    from sqlalchemy import select

    from certflow.services import sign_ups
    from certflow.services.access import digest
    from certflow.settings import get_settings
    from certflow.store.accounts import PendingSignUp
    from certflow.store.db import session_scope

    links: list[str] = []
    monkeypatch.setattr(sign_ups, "send_to_address",
                        lambda *_, context, **__: links.append(context["confirm_url"]))

    def start(name: str) -> Callable[[Any], Any]:
        return lambda s: sign_ups.start(s, get_settings(), sign_ups.SignUp(
            email="ann@example.nl", display_name=name, language="nl", address={},
            date_of_birth=None, password_hash="x"), now=NOW)

    assert while_pending(start("Ann de Vries"), second(start("Ann de Vries-Bos"))) == "pending"
    with session_scope() as s:
        [row] = s.scalars(select(PendingSignUp))
    first, newest = (link.rsplit("/", 1)[1] for link in links)  # in the order they were made
    assert row.display_name == "Ann de Vries-Bos" and row.token_hash == digest(newest) != digest(first)


def test_two_address_changes_of_one_account_at_once_leave_one_and_both_end_cleanly(db: str) -> None:
    """A double click on 'Opslaan' with a new address on "Mijn account" (only the address
    changed, so the account's row is not written and locks nothing): the second request's
    delete of the earlier change did not see the first one's row, its insert waited on the
    one-change-per-account index and then broke it, a 500. The newer change replaces the
    older in one statement; only its link works."""
    from sqlalchemy import select

    from certflow.services import email_changes
    from certflow.services.access import digest
    from certflow.settings import get_settings
    from certflow.store.accounts import EmailChange
    from certflow.store.db import session_scope

    def ask(address: str) -> Callable[[Any], Any]:
        return lambda s: email_changes.ask(s, get_settings(), "olga", address, now=NOW)

    tokens: list[str] = []
    newest = while_pending(lambda s: tokens.append(ask("olga@thuis.example")(s)),
                           second(ask("olga@werk.example")))
    assert isinstance(newest, str), newest
    with session_scope() as s:
        [row] = s.scalars(select(EmailChange))
    assert (row.username, row.new_email, row.token_hash) == ("olga", "olga@werk.example", digest(newest))
    with session_scope() as s:
        assert email_changes.link(s, tokens[0], now=NOW) is None


def test_one_reset_link_used_twice_at_once_sets_one_password(db: str) -> None:
    """A double click on the reset page's 'Opslaan' (or the link open in two tabs): both
    requests read the link unused, and both set a password and started a session, the
    second signing out the first; a single-use link worked twice. The link is locked while
    it is used: the second finds it used up."""
    from certflow.errors import Forbidden
    from certflow.services import access
    from certflow.settings import get_settings
    from certflow.store.db import session_scope
    from certflow.store.models import User

    with session_scope() as s:
        account, token = access.request_reset(s, get_settings(), "olga@cmi.example", now=NOW)

    def use(password: str) -> Callable[[Any], Any]:
        return lambda s: access.complete_reset(s, token, password, now=NOW)

    refused = while_pending(use("the first long passphrase"), second(use("the second long passphrase")))
    assert isinstance(refused, Forbidden), refused
    with session_scope() as s:
        assert access.verify_password(s.get(User, "olga").password_hash, "the first long passphrase")


def test_two_sign_ups_whose_addresses_give_one_username_both_confirm_at_once(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ann@example.nl and ann@elders.nl confirm their sign-ups at the same moment: both are
    offered the username "ann". The second waited for the first and was refused "username
    taken" (409): a stranger's confirmation failed for a name they never chose. It gets a
    numbered one instead, as it would have a moment later."""
    from certflow.services import accounts, sign_ups
    from certflow.services.access import hash_password
    from certflow.settings import get_settings
    from certflow.store.db import session_scope

    links: dict[str, str] = {}
    monkeypatch.setattr(sign_ups, "send_to_address",
                        lambda *_, address, context, **__: links.__setitem__(address, context["confirm_url"]))
    password = "een lang wachtwoord"
    for email in ("ann@example.nl", "ann@elders.nl"):
        with session_scope() as s:
            sign_ups.start(s, get_settings(), sign_ups.SignUp(
                email=email, display_name="Ann", language="nl", address={}, date_of_birth=None,
                password_hash=hash_password(password)), now=NOW)

    def confirm(email: str) -> Callable[[Any], Any]:
        token = links[email].rsplit("/", 1)[1]
        return lambda s: sign_ups.confirm(s, get_settings(), token, password, "10.0.0.1", now=NOW)

    made = while_pending(confirm("ann@example.nl"), second(confirm("ann@elders.nl")))
    assert isinstance(made, accounts.Account), made
    assert made.username.startswith("ann") and made.username != "ann" and made.email == "ann@elders.nl"
    with session_scope() as s:
        assert accounts.get(s, "ann").email == "ann@example.nl"
