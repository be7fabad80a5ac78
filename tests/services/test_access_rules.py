"""Getting in, as a person notices it: which password is accepted, that an old password no
longer signs in, when sign-in is refused for too many failures (per address and per IP, and
for how long), that a deactivated account gets nowhere, how long a browser session lasts, what
an API token stops doing when revoked or expired, and a reset link that works once.

On an in-memory database copied per test, with argon2 at its cheapest cost (as every test
sets it): bench/mutation.py runs this file per mutant of certflow/services/access.py."""

# ruff: noqa: F811  (fixtures imported by name)

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from certflow.errors import Forbidden, InvalidInput, NotFound
from certflow.services import access, accounts
from certflow.services.access import SignInRefused
from certflow.settings import Settings, get_settings, reset_settings
from certflow.store.accounts import ApiToken, PasswordReset, SignInAttempt, WebSession
from certflow.store.communications import EmailMessage
from certflow.store.models import User
from tests.handlers._fixtures_records import engine, session  # noqa: F401

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)
PASSWORD = "correct horse battery"
WRONG = "wrong password!"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name, value in {"ENV": "test", "VAR_DIR": str(tmp_path), "SMTP_HOST": "",
                        "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"}.items():
        monkeypatch.setenv(f"CERTFLOW_{name}", value)
    reset_settings()
    yield get_settings()
    reset_settings()


@pytest.fixture
def cas(session: Session, settings: Settings) -> str:
    accounts.create(session, "cas", "Cas de Vries", ["candidate"], email="cas@example.nl",
                    password_hash=access.hash_password(PASSWORD), now=NOW)
    return "cas"


def sign_in(session: Session, settings: Settings, password: str = PASSWORD,
            email: str = "cas@example.nl", ip: str = "10.0.0.1",
            at: datetime = NOW) -> accounts.Account | SignInRefused:
    return access.sign_in(session, settings, email, password, ip, now=at)


def signed_in(outcome: accounts.Account | SignInRefused) -> bool:
    return isinstance(outcome, accounts.Account)


def failures(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(SignInAttempt)) or 0


# -- passwords -------------------------------------------------------------------------------
@pytest.mark.parametrize(("password", "email", "problem"), [
    ("a" * 9, "", "Use at least 10 characters."),
    ("a" * 10, "", None),
    ("a" * 200, "", None),
    ("a" * 201, "", "Use at most 200 characters."),
    ("  Cas@Example.nl ", "cas@example.nl ", "Do not use your e-mail address as your password."),
    ("cas@example.nl!", "cas@example.nl", None),
    (" " * 12, "", None),
])
def test_what_a_new_password_must_be(password: str, email: str, problem: str | None) -> None:
    assert access.password_problem(password, email) == problem


def test_a_password_is_kept_as_an_argon2id_hash_at_the_configured_cost(settings: Settings) -> None:
    stored = access.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


def test_a_new_password_signs_in_and_the_old_one_no_longer(session: Session, settings: Settings,
                                                           cas: str) -> None:
    mine = access.start_session(session, settings, "cas", "10.0.0.1", now=NOW)[0]
    accounts.create(session, "bea", "Bea", ["candidate"], now=NOW)
    theirs = access.start_session(session, settings, "bea", "10.0.0.2", now=NOW)[0]
    access.set_password(session, "cas", "a new long passphrase")
    assert not signed_in(sign_in(session, settings, PASSWORD))
    assert signed_in(sign_in(session, settings, "a new long passphrase"))
    # Every browser still signed in with the old password is signed out; no one else's.
    assert access.resume_session(session, settings, mine, now=NOW) is None
    assert access.resume_session(session, settings, theirs, now=NOW) is not None


def test_a_bad_new_password_is_refused_and_the_old_one_stays(session: Session, settings: Settings,
                                                              cas: str) -> None:
    for password, problem in (("short", "Use at least 10 characters."),
                              ("CAS@example.nl", "Do not use your e-mail address as your password.")):
        with pytest.raises(InvalidInput) as refused:
            access.set_password(session, "cas", password)
        assert refused.value.message == problem
        assert refused.value.details["fields"] == {"password": problem}
    assert signed_in(sign_in(session, settings))
    with pytest.raises(NotFound, match="no user 'nobody'"):
        access.set_password(session, "nobody", "a new long passphrase")


# -- sign-in ---------------------------------------------------------------------------------------
def test_the_right_password_signs_in_whatever_the_address_is_typed_like(
        session: Session, settings: Settings, cas: str) -> None:
    outcome = sign_in(session, settings, email="  CAS@example.NL ")
    assert isinstance(outcome, accounts.Account) and outcome.username == "cas"


@pytest.mark.parametrize("case", ["wrong password", "unknown address", "no password",
                                  "deactivated", "broken hash"])
def test_every_refusal_gets_the_same_answer_and_counts(session: Session, settings: Settings,
                                                       cas: str, case: str) -> None:
    password, email = PASSWORD, "cas@example.nl"
    if case == "wrong password":
        password = WRONG
    elif case == "unknown address":
        email = "nobody@example.nl"
    elif case == "no password":
        accounts.create(session, "sys", "System", [], email="sys@example.nl", now=NOW)
        email = "sys@example.nl"
    elif case == "deactivated":
        accounts.set_active(session, "cas", False)
    else:
        session.get(User, "cas").password_hash = "not an argon2 hash"  # type: ignore[union-attr]
    outcome = sign_in(session, settings, password, email=email)
    assert isinstance(outcome, SignInRefused)
    assert (outcome.message, outcome.retry_minutes, outcome.status) \
        == ("The e-mail address or password is not right.", 0, 401)
    assert [(a.email, a.ip, a.at) for a in session.scalars(select(SignInAttempt))] \
        == [(email, "10.0.0.1", NOW)]


def test_the_password_that_stands_in_for_a_missing_one_opens_nothing(
        session: Session, settings: Settings, cas: str) -> None:
    """An unknown address and an account without a password are checked against a stand-in
    hash (so both cost one argon2 run); its own password must not get anyone in."""
    accounts.create(session, "sys", "System", [], email="sys@example.nl", now=NOW)
    for email in ("sys@example.nl", "nobody@example.nl"):
        refused = sign_in(session, settings, "certflow-no-such-account", email=email)
        assert isinstance(refused, SignInRefused) and refused.retry_minutes == 0


def test_a_sign_in_without_a_time_uses_the_wall_clock(session: Session, settings: Settings,
                                                      cas: str) -> None:
    before = datetime.now(timezone.utc)
    access.sign_in(session, settings, "cas@example.nl", WRONG, "10.0.0.1")
    at = session.scalars(select(SignInAttempt.at)).one()
    assert before <= at <= datetime.now(timezone.utc)
    assert before <= access.wall_now() <= datetime.now(timezone.utc)


def test_five_failures_lock_the_address_for_the_window(session: Session, settings: Settings,
                                                       cas: str) -> None:
    for n in range(4):
        assert not signed_in(sign_in(session, settings, WRONG, ip=f"10.0.0.{n}", at=NOW + n * MIN))
    # Four failures: the right password still gets in (from yet another address).
    later = NOW + 4 * MIN
    assert signed_in(sign_in(session, settings, ip="10.0.1.1", at=later))
    for n in range(5):
        assert not signed_in(sign_in(session, settings, WRONG, ip=f"10.0.2.{n}", at=later))
    locked = sign_in(session, settings, ip="10.0.3.1", at=later)
    assert isinstance(locked, SignInRefused)
    assert (locked.message, locked.retry_minutes) \
        == ("Too many failed attempts. Wait {minutes} minutes and try again.", 15)
    # Locked is not a failure of its own: it does not lengthen the wait.
    assert failures(session) == 5
    # Other people still sign in from elsewhere.
    accounts.create(session, "bea", "Bea", [], email="bea@example.nl",
                    password_hash=access.hash_password(PASSWORD), now=NOW)
    assert signed_in(sign_in(session, settings, email="bea@example.nl", at=later))
    # Free again once the last failure is more than fifteen minutes ago, not a moment before.
    assert not signed_in(sign_in(session, settings, at=later + 15 * MIN))
    assert signed_in(sign_in(session, settings, at=later + 15 * MIN + timedelta(seconds=1)))


def test_a_success_forgets_only_that_addresss_failures(session: Session, settings: Settings,
                                                       cas: str) -> None:
    for _ in range(4):
        sign_in(session, settings, WRONG, email="bea@example.nl", ip="10.0.0.9")
    for _ in range(4):
        sign_in(session, settings, WRONG)
    assert signed_in(sign_in(session, settings))
    assert [a.email for a in session.scalars(select(SignInAttempt))] == ["bea@example.nl"] * 4
    sign_in(session, settings, WRONG, email="bea@example.nl", ip="10.0.0.9")
    assert sign_in(session, settings, email="bea@example.nl", ip="10.0.0.8").retry_minutes == 15  # type: ignore[union-attr]


def test_where_one_failure_locks_a_fresh_address_still_signs_in(
        session: Session, settings: Settings, cas: str) -> None:
    strict = settings.model_copy(update={"sign_in_max_failures_per_email": 1,
                                         "sign_in_max_failures_per_ip": 1})
    assert signed_in(sign_in(session, strict))
    assert not signed_in(sign_in(session, strict, WRONG))
    assert sign_in(session, strict).retry_minutes == 15  # type: ignore[union-attr]


def test_fifty_failures_from_one_ip_lock_it_for_every_address(session: Session, settings: Settings,
                                                              cas: str) -> None:
    session.add_all(SignInAttempt(email=f"guess{n}@example.nl", ip="10.6.6.6", at=NOW)
                    for n in range(49))
    session.flush()
    assert signed_in(sign_in(session, settings, ip="10.6.6.6"))
    sign_in(session, settings, WRONG, email="guess49@example.nl", ip="10.6.6.6")
    refused = sign_in(session, settings, ip="10.6.6.6")
    assert isinstance(refused, SignInRefused) and refused.retry_minutes == 15
    assert signed_in(sign_in(session, settings, ip="10.0.0.2"))


def test_failures_older_than_the_window_count_for_nothing_and_are_pruned(
        session: Session, settings: Settings, cas: str) -> None:
    start = NOW - 15 * MIN
    session.add_all([SignInAttempt(email="cas@example.nl", ip="10.0.0.1", at=start - MIN),
                     *(SignInAttempt(email="cas@example.nl", ip="10.0.0.1", at=start)
                       for _ in range(4))])
    session.flush()
    sign_in(session, settings, WRONG, email="bea@example.nl")
    # The one older than the window is gone; those exactly at its start still count.
    assert sorted(a.at for a in session.scalars(select(SignInAttempt))) == [start] * 4 + [NOW]
    sign_in(session, settings, WRONG)
    assert sign_in(session, settings).retry_minutes == 15  # type: ignore[union-attr]


def test_an_overlong_address_or_ip_is_recorded_cut_short(session: Session, settings: Settings,
                                                         cas: str) -> None:
    email, ip = "x" * 300 + "@example.nl", "f" * 100
    sign_in(session, settings, WRONG, email=email, ip=ip)
    attempt = session.scalars(select(SignInAttempt)).one()
    assert (attempt.email, attempt.ip) == (email[:200], ip[:64])


def test_a_hash_of_an_older_cost_is_renewed_when_its_owner_signs_in(
        session: Session, settings: Settings, cas: str) -> None:
    user = session.get(User, "cas")
    assert user is not None
    old = PasswordHasher(time_cost=2, memory_cost=1024).hash(PASSWORD)
    user.password_hash = old
    assert signed_in(sign_in(session, settings))
    assert user.password_hash != old and user.password_hash.startswith("$argon2id$v=19$m=1024,t=1,")
    current = user.password_hash
    assert signed_in(sign_in(session, settings))
    assert user.password_hash == current


# -- browser sessions --------------------------------------------------------------------------------
def test_a_browser_session_is_kept_only_as_a_hash(session: Session, settings: Settings,
                                                  cas: str) -> None:
    cookie, csrf = access.start_session(session, settings, "cas", "f" * 100, now=NOW)
    row = session.scalars(select(WebSession)).one()
    assert row.id_hash == hashlib.sha256(cookie.encode()).hexdigest() == access.digest(cookie)
    assert (row.username, row.csrf_token, row.created_at, row.last_seen_at, row.ip) \
        == ("cas", csrf, NOW, NOW, "f" * 64)
    assert len(cookie) >= 43 and len(csrf) >= 43 and cookie != csrf
    resumed = access.resume_session(session, settings, cookie, now=NOW)
    assert resumed is not None
    assert (resumed.account.username, resumed.csrf_token) == ("cas", csrf)


def test_a_session_ends_after_two_idle_hours(session: Session, settings: Settings, cas: str) -> None:
    cookie = access.start_session(session, settings, "cas", "10.0.0.1", now=NOW)[0]
    assert access.resume_session(session, settings, cookie, now=NOW + 120 * MIN - MIN) is not None
    # Used a minute before it would end: two more idle hours from then.
    used = NOW + 119 * MIN
    assert access.resume_session(session, settings, cookie, now=used + 119 * MIN) is not None
    assert access.resume_session(session, settings, cookie, now=used + 119 * MIN + 120 * MIN) is None


def test_a_session_used_only_in_its_first_minute_still_ends_two_hours_after_sign_in(
        session: Session, settings: Settings, cas: str) -> None:
    cookie = access.start_session(session, settings, "cas", "10.0.0.1", now=NOW)[0]
    assert access.resume_session(session, settings, cookie, now=NOW + MIN) is not None
    assert access.resume_session(session, settings, cookie, now=NOW + 120 * MIN) is None


def test_a_session_used_after_its_first_minute_lasts_two_hours_from_then(
        session: Session, settings: Settings, cas: str) -> None:
    cookie = access.start_session(session, settings, "cas", "10.0.0.1", now=NOW)[0]
    used = NOW + timedelta(seconds=90)
    assert access.resume_session(session, settings, cookie, now=used) is not None
    assert access.resume_session(session, settings, cookie, now=used + 120 * MIN - MIN) is not None


def test_a_session_ends_twelve_hours_after_sign_in_however_busy(session: Session,
                                                                settings: Settings, cas: str) -> None:
    cookie = access.start_session(session, settings, "cas", "10.0.0.1", now=NOW)[0]
    for hour in range(1, 12):
        assert access.resume_session(session, settings, cookie, now=NOW + hour * 60 * MIN)
    assert access.resume_session(session, settings, cookie, now=NOW + 12 * 60 * MIN - MIN)
    assert access.resume_session(session, settings, cookie, now=NOW + 12 * 60 * MIN) is None


def test_a_session_of_a_deactivated_account_or_an_unknown_cookie_gets_nowhere(
        session: Session, settings: Settings, cas: str) -> None:
    cookie = access.start_session(session, settings, "cas", "10.0.0.1", now=NOW)[0]
    for unknown in (None, "", "made-up-cookie"):
        assert access.resume_session(session, settings, unknown, now=NOW) is None
    accounts.set_active(session, "cas", False)
    assert access.resume_session(session, settings, cookie, now=NOW) is None
    accounts.set_active(session, "cas", True)
    assert access.resume_session(session, settings, cookie, now=NOW) is not None


def test_a_session_without_a_time_uses_the_wall_clock(session: Session, settings: Settings,
                                                      cas: str) -> None:
    cookie = access.start_session(session, settings, "cas", "10.0.0.1")[0]
    created = session.scalars(select(WebSession.created_at)).one()
    assert abs(created - datetime.now(timezone.utc)) < MIN
    assert access.resume_session(session, settings, cookie) is not None


def test_expired_sessions_are_cleared_when_someone_signs_in(session: Session, settings: Settings,
                                                            cas: str) -> None:
    old = access.start_session(session, settings, "cas", "10.0.0.1", now=NOW - 13 * 60 * MIN)[0]
    recent = access.start_session(session, settings, "cas", "10.0.0.1", now=NOW - 60 * MIN)[0]
    access.start_session(session, settings, "cas", "10.0.0.2", now=NOW)
    hashes = set(session.scalars(select(WebSession.id_hash)))
    assert access.digest(old) not in hashes and access.digest(recent) in hashes and len(hashes) == 2


def test_signing_out_ends_that_session_only(session: Session, settings: Settings, cas: str) -> None:
    here = access.start_session(session, settings, "cas", "10.0.0.1", now=NOW)[0]
    there = access.start_session(session, settings, "cas", "10.0.0.2", now=NOW)[0]
    access.end_session(session, None)
    access.end_session(session, here)
    assert access.resume_session(session, settings, here, now=NOW) is None
    assert access.resume_session(session, settings, there, now=NOW) is not None


def test_expiring_a_persons_sessions_signs_out_every_browser_of_theirs_only(
        session: Session, settings: Settings, cas: str) -> None:
    accounts.create(session, "bea", "Bea", [], now=NOW)
    mine = [access.start_session(session, settings, "cas", "10.0.0.1", now=NOW)[0] for _ in range(2)]
    theirs = access.start_session(session, settings, "bea", "10.0.0.1", now=NOW)[0]
    assert access.expire_sessions(session, "cas") == 2
    assert all(access.resume_session(session, settings, c, now=NOW) is None for c in mine)
    assert access.resume_session(session, settings, theirs, now=NOW) is not None
    assert access.expire_sessions(session, "cas") == 0


# -- API tokens ---------------------------------------------------------------------------------------
def test_a_token_lets_a_script_in_until_it_expires(session: Session, settings: Settings,
                                                   cas: str) -> None:
    token, info = access.create_token(session, "cas", "n" * 120, valid_for=timedelta(days=30), now=NOW)
    assert (info.username, info.name, info.created_at, info.expires_at, info.revoked_at,
            info.last_used_at) == ("cas", "n" * 100, NOW, NOW + timedelta(days=30), None, None)
    assert session.scalars(select(ApiToken.token_hash)).one() == access.digest(token)
    assert access.authenticate(session, token, now=NOW + timedelta(days=30) - MIN).username == "cas"
    assert info.status(NOW + timedelta(days=30) - MIN) == "active"
    with pytest.raises(Forbidden) as expired:
        access.authenticate(session, token, now=NOW + timedelta(days=30))
    assert expired.value.message == \
        "this API token has expired; create a new one (certflow token create)"
    assert info.status(NOW + timedelta(days=30)) == "expired"


def test_a_token_without_expiry_and_one_of_our_choosing(session: Session, settings: Settings,
                                                        cas: str) -> None:
    token, info = access.create_token(session, "cas", token="demo-token-cas", now=NOW)
    assert token == "demo-token-cas" and info.expires_at is None and info.name == ""
    assert info.status(NOW + timedelta(days=10000)) == "active"
    assert access.authenticate(session, "demo-token-cas", now=NOW + timedelta(days=10000)).username == "cas"
    random_one, _ = access.create_token(session, "cas", now=NOW)
    assert len(random_one) >= 32 and random_one != token
    with pytest.raises(NotFound, match="no user 'nobody'"):
        access.create_token(session, "nobody", now=NOW)


def test_a_revoked_token_gets_nowhere_and_stays_revoked_when_it_was(session: Session,
                                                                    settings: Settings, cas: str) -> None:
    token, info = access.create_token(session, "cas", now=NOW)
    revoked = access.revoke_token(session, info.id, now=NOW + MIN)
    assert revoked.revoked_at == NOW + MIN and revoked.status(NOW) == "revoked"
    assert access.revoke_token(session, info.id, now=NOW + 2 * MIN).revoked_at == NOW + MIN
    with pytest.raises(Forbidden) as refused:
        access.authenticate(session, token, now=NOW + 2 * MIN)
    assert refused.value.message == "this API token was revoked"
    with pytest.raises(NotFound, match="no API token #999"):
        access.revoke_token(session, 999)
    other = access.create_token(session, "cas", now=NOW)[1]
    before = datetime.now(timezone.utc)
    assert before <= access.revoke_token(session, other.id).revoked_at  # type: ignore[operator]


def test_an_unknown_missing_or_deactivated_token_is_refused(session: Session, settings: Settings,
                                                            cas: str) -> None:
    token = access.create_token(session, "cas", now=NOW)[0]
    for missing in (None, ""):
        with pytest.raises(Forbidden) as refused:
            access.authenticate(session, missing, now=NOW)
        assert refused.value.message == "missing API token (Authorization: Bearer <token>)"
    with pytest.raises(Forbidden) as unknown:
        access.authenticate(session, "made-up", now=NOW)
    assert unknown.value.message == "unknown API token"
    accounts.set_active(session, "cas", False)
    with pytest.raises(Forbidden) as deactivated:
        access.authenticate(session, token)
    assert deactivated.value.message == "this account is deactivated"


def test_a_tokens_last_use_is_noted_at_most_once_a_minute(session: Session, settings: Settings,
                                                          cas: str) -> None:
    token, info = access.create_token(session, "cas", now=NOW)
    access.authenticate(session, token, now=NOW + MIN)
    access.authenticate(session, token, now=NOW + 2 * MIN)
    assert access.list_tokens(session)[0].last_used_at == NOW + MIN
    access.authenticate(session, token, now=NOW + 2 * MIN + timedelta(seconds=1))
    assert access.list_tokens(session)[0].last_used_at == NOW + 2 * MIN + timedelta(seconds=1)
    before = datetime.now(timezone.utc)
    access.authenticate(session, token)
    assert access.list_tokens(session)[0].last_used_at >= before  # type: ignore[operator]


def test_the_token_list_is_in_order_and_per_person(session: Session, settings: Settings,
                                                   cas: str) -> None:
    accounts.create(session, "bea", "Bea", [], now=NOW)
    access.create_token(session, "cas", "one", now=NOW)
    access.create_token(session, "bea", "two", now=NOW)
    access.create_token(session, "cas", "three", now=NOW)
    assert [t.name for t in access.list_tokens(session)] == ["one", "two", "three"]
    assert [t.name for t in access.list_tokens(session, "cas")] == ["one", "three"]
    assert [t.name for t in access.list_tokens(session, "")] == ["one", "two", "three"]


@pytest.mark.integration
def test_the_token_list_stays_in_the_order_made_after_a_revocation_on_postgresql(pg_url: str) -> None:
    """PostgreSQL, unlike SQLite, moves an updated row: only the ORDER BY keeps the list put."""
    from certflow.store.db import session_scope

    with session_scope() as session:
        accounts.create(session, "cas", "Cas", [], now=NOW)
        made = [access.create_token(session, "cas", name, now=NOW) for name in ("a", "b", "c")]
        session.commit()
        access.revoke_token(session, made[0][1].id, now=NOW)
        access.authenticate(session, made[1][0], now=NOW + 2 * MIN)
        session.commit()
        assert [t.name for t in access.list_tokens(session)] == ["a", "b", "c"]
        assert [t.name for t in access.list_tokens(session, "cas")] == ["a", "b", "c"]


# -- password reset -----------------------------------------------------------------------------------
def test_a_reset_link_works_once_and_ends_every_other_open_link(session: Session, settings: Settings,
                                                                cas: str) -> None:
    first = access.request_reset(session, settings, " CAS@example.nl", now=NOW)
    assert first is not None and first[0].username == "cas"
    second = access.request_reset(session, settings, "cas@example.nl", now=NOW)
    assert second is not None
    assert access.reset_account(session, first[1], now=NOW).username == "cas"  # type: ignore[union-attr]
    account = access.complete_reset(session, first[1], "a new long passphrase", now=NOW + MIN)
    assert account.username == "cas"
    assert signed_in(sign_in(session, settings, "a new long passphrase"))
    assert not signed_in(sign_in(session, settings, PASSWORD))
    for used in (first[1], second[1]):
        assert access.reset_account(session, used, now=NOW + MIN) is None
        with pytest.raises(Forbidden) as refused:
            access.complete_reset(session, used, "another long passphrase", now=NOW + MIN)
        assert refused.value.message == "This link has expired or was used already. Ask for a new one."
    assert set(session.scalars(select(PasswordReset.used_at))) == {NOW + MIN}


def test_when_each_link_was_used_stays_on_record(session: Session, settings: Settings,
                                                 cas: str) -> None:
    _, first = access.request_reset(session, settings, "cas@example.nl", now=NOW)  # type: ignore[misc]
    access.complete_reset(session, first, "a new long passphrase", now=NOW + MIN)
    _, second = access.request_reset(session, settings, "cas@example.nl", now=NOW + 5 * MIN)  # type: ignore[misc]
    access.complete_reset(session, second, "another long passphrase", now=NOW + 6 * MIN)
    used = {row.token_hash: row.used_at for row in session.scalars(select(PasswordReset))}
    assert used == {access.digest(first): NOW + MIN, access.digest(second): NOW + 6 * MIN}


def test_a_reset_leaves_other_peoples_links_usable(session: Session, settings: Settings,
                                                   cas: str) -> None:
    accounts.create(session, "bea", "Bea", [], email="bea@example.nl", now=NOW)
    _, theirs = access.request_reset(session, settings, "bea@example.nl", now=NOW)  # type: ignore[misc]
    _, mine = access.request_reset(session, settings, "cas@example.nl", now=NOW)  # type: ignore[misc]
    access.complete_reset(session, mine, "a new long passphrase", now=NOW)
    bea = access.complete_reset(session, theirs, "bea's own passphrase", now=NOW + MIN)
    assert bea.username == "bea"


def test_a_reset_link_lasts_an_hour(session: Session, settings: Settings, cas: str) -> None:
    _, token = access.request_reset(session, settings, "cas@example.nl", now=NOW)  # type: ignore[misc]
    assert session.scalars(select(PasswordReset)).one().token_hash == access.digest(token)
    assert access.reset_account(session, token, now=NOW + 60 * MIN - timedelta(seconds=1))
    assert access.reset_account(session, token, now=NOW + 60 * MIN) is None
    with pytest.raises(Forbidden):
        access.complete_reset(session, token, "a new long passphrase", now=NOW + 60 * MIN)
    assert signed_in(sign_in(session, settings))


def test_a_bad_password_leaves_the_link_usable(session: Session, settings: Settings, cas: str) -> None:
    _, token = access.request_reset(session, settings, "cas@example.nl", now=NOW)  # type: ignore[misc]
    with pytest.raises(InvalidInput):
        access.complete_reset(session, token, "short", now=NOW)
    assert access.reset_account(session, token, now=NOW) is not None


def test_resets_without_a_time_use_the_wall_clock(session: Session, settings: Settings, cas: str) -> None:
    _, token = access.request_reset(session, settings, "cas@example.nl")  # type: ignore[misc]
    expires = session.scalars(select(PasswordReset.expires_at)).one()
    assert abs(expires - datetime.now(timezone.utc) - 60 * MIN) < MIN
    assert access.reset_account(session, token) is not None
    access.complete_reset(session, token, "a new long passphrase")
    used = session.scalars(select(PasswordReset.used_at)).one()
    assert used is not None and abs(used - datetime.now(timezone.utc)) < MIN


def test_no_reset_for_an_unknown_or_deactivated_account(session: Session, settings: Settings,
                                                        cas: str) -> None:
    assert access.request_reset(session, settings, "nobody@example.nl", now=NOW) is None
    accounts.set_active(session, "cas", False)
    assert access.request_reset(session, settings, "cas@example.nl", now=NOW) is None
    assert access.reset_account(session, "made-up", now=NOW) is None


def test_the_reset_mail_carries_the_link_once(session: Session, settings: Settings, cas: str) -> None:
    account = accounts.update(session, "cas", {"language": "en"})
    link = "https://cmi.example/reset/abc"
    access.send_reset_mail(session, settings, account, link, now=NOW)
    access.send_reset_mail(session, settings, account, link, now=NOW)
    mail = session.scalars(select(EmailMessage)).one()
    assert (mail.to_address, mail.subject, mail.status, mail.created_at) \
        == ("cas@example.nl", "Set a new password", "sent", NOW)
    assert link in mail.body_text and "for 60 minutes" in mail.body_text
    access.send_reset_mail(session, settings, account, link + "x")
    assert session.scalar(select(func.count()).select_from(EmailMessage)) == 2
