"""Signing in and out, sessions, CSRF, rate limit, registration and password reset, as a
browser (in-process) sees them."""

from __future__ import annotations

import mailbox
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from certflow.services import access, accounts, sign_ups
from certflow.settings import get_settings
from certflow.store.accounts import MailRequest, PasswordReset, PendingSignUp, SignInAttempt, WebSession
from certflow.store.db import session_scope
from tests.web.pages_support import ADDRESS, PASSWORD, Browser, csrf_of, mailed_link, mails, person


@pytest.fixture
def office(sqlite_url: str) -> str:
    return person("olga", ["office"], staff=True)


def test_anonymous_visitors_are_sent_to_sign_in_and_come_back(office: str) -> None:
    b = Browser()
    response = b.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    response = b.get("/account", follow_redirects=False)
    assert response.headers["location"] == "/sign-in?next=/account"
    signed_in = b.post("/sign-in", {"email": office, "password": PASSWORD, "next": "/account"},
                       follow_redirects=False)
    assert signed_in.headers["location"] == "/account"
    cookie = signed_in.headers["set-cookie"]
    assert "certflow_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = b.get("/account")
    assert "Olga Tester" in page.text and 'lang="nl"' in page.text


def test_next_never_leaves_the_site(office: str) -> None:
    b = Browser()
    response = b.post("/sign-in", {"email": office, "password": PASSWORD,
                                   "next": "//evil.example/x"}, follow_redirects=False)
    assert response.headers["location"] == "/inbox"  # staff land in their inbox, not elsewhere


def test_wrong_password_and_unknown_email_get_the_same_answer(office: str) -> None:
    b = Browser()
    wrong = b.post("/sign-in", {"email": office, "password": "nope"})
    unknown = b.post("/sign-in", {"email": "nobody@example.org", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Het e-mailadres of wachtwoord klopt niet." in wrong.text
    assert "Het e-mailadres of wachtwoord klopt niet." in unknown.text
    empty = b.post("/sign-in", {"email": "", "password": ""})
    assert empty.status_code == 422
    assert 'href="#email"' in empty.text and 'id="email-error"' in empty.text


def test_sign_in_is_rate_limited_per_account_even_with_the_right_password(office: str) -> None:
    b = Browser()
    for _ in range(get_settings().sign_in_max_failures_per_email):
        assert b.post("/sign-in", {"email": office, "password": "guess"}).status_code == 401
    refused = b.post("/sign-in", {"email": office, "password": PASSWORD})
    assert refused.status_code == 429
    assert "Te veel mislukte pogingen" in refused.text
    assert "certflow_session" not in refused.headers.get("set-cookie", "")
    # Another account from another browser is not affected by this one's lock.
    other = person("otto", ["office"], staff=True)
    Browser().sign_in(other)


def test_rate_limit_per_ip(office: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_SIGN_IN_MAX_FAILURES_PER_IP", "3")
    from certflow.settings import reset_settings

    reset_settings()
    b = Browser()
    for n in range(3):
        b.post("/sign-in", {"email": f"guess{n}@example.org", "password": "x"})
    assert b.post("/sign-in", {"email": office, "password": PASSWORD}).status_code == 429


def test_forged_or_missing_csrf_token_is_refused_and_changes_nothing(office: str) -> None:
    b = Browser()
    b.sign_in(office)
    forged = b.post("/account", {"display_name": "Hacked", "email": office}, csrf="forged")
    assert forged.status_code == 403 and "Er is niets gewijzigd" in forged.text
    missing = b.client.post("/account", data={"display_name": "Hacked", "email": office})
    assert missing.status_code == 403
    # Another browser's valid token does not work in this session either.
    other = Browser()
    other.sign_in(person("otto", ["office"], staff=True))
    stolen = b.post("/account", {"display_name": "Hacked", "email": office},
                    csrf=other.csrf("/account"))
    assert stolen.status_code == 403
    with session_scope() as session:
        assert accounts.get(session, "olga").display_name == "Olga Tester"
    # htmx sends the token as a header
    header = b.client.post("/language", data={"language": "en"},
                           headers={"X-CSRF-Token": b.csrf("/account"), "HX-Request": "true"})
    assert header.status_code == 200 and header.headers["HX-Redirect"] == "/"


def test_a_form_the_multipart_parser_cannot_read_is_a_page_and_changes_nothing(office: str) -> None:
    """python-multipart's own errors (here a part whose headers pass its limit: a 100,000-
    character file name) were a 500 from every page form, read first for its CSRF token, or
    by the route when htmx sent the token as a header."""
    b = Browser()
    b.sign_in(office)
    token = b.csrf("/account")
    part = (b'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n' + token.encode() + b"\r\n"
            b'--b\r\nContent-Disposition: form-data; name="display_name"; filename="' + b"x" * 100_000
            + b'"\r\n\r\nHacked\r\n--b--\r\n')
    for headers in ({}, {"X-CSRF-Token": token}):
        refused = b.client.post("/account", content=part, follow_redirects=False,
                                headers={"Content-Type": "multipart/form-data; boundary=b", **headers})
        assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/html")
        assert "een veld of bestand ontbreekt of is niet zoals verwacht. Er is niets gewijzigd" in refused.text
    with session_scope() as session:
        assert accounts.get(session, "olga").display_name == "Olga Tester"
    api = b.client.post("/api/instances", content=part, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert api.status_code < 500


def test_an_expired_session_is_told_so_and_changes_nothing(office: str) -> None:
    b = Browser()
    b.sign_in(office)
    token = b.csrf("/account")
    with session_scope() as session:
        session.execute(update(WebSession).values(
            expires_at=access.wall_now() - timedelta(seconds=1)))
    response = b.post("/account", {"display_name": "Too late", "email": office}, csrf=token,
                      follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in?next=/account&expired=1")
    assert "verlopen" in b.get(response.headers["location"]).text
    with session_scope() as session:
        assert accounts.get(session, "olga").display_name == "Olga Tester"


def test_sign_out_ends_the_session(office: str) -> None:
    b = Browser()
    b.sign_in(office)
    cookie = b.client.cookies.get("certflow_session")
    out = b.post("/sign-out", {}, form_page="/account", follow_redirects=False)
    assert out.status_code == 303
    b.client.cookies.set("certflow_session", cookie)  # replaying the old cookie does not help
    assert b.get("/account", follow_redirects=False).status_code == 303


def test_pages_refuse_what_a_role_may_not_see(office: str) -> None:
    person("cas", ["candidate"], address=ADDRESS)
    b = Browser()
    b.sign_in("cas@example.org")
    assert b.get("/admin/people").status_code == 403
    assert b.get("/admin/people/olga").status_code == 403
    refused = b.post("/admin/people/olga", {"display_name": "X", "email": "x@example.org",
                                            "roles": "candidate"}, form_page="/account")
    assert refused.status_code == 403
    with session_scope() as session:
        assert accounts.get(session, "olga").display_name == "Olga Tester"


SIGN_UP = {"display_name": "Anna de Vries", "email": "Anna@Example.nl", "date_of_birth": "1985-03-15",
           "street": "Lange Nieuwstraat 5", "postal_code": "3512pn", "city": "Utrecht",
           "country": "nl", "language": "en", "password": "a long enough one",
           "password_again": "a long enough one", "privacy": "on"}


def _mails(to: str) -> list[tuple[str, str]]:
    return mails(to)


def _confirm_link(to: str) -> str:
    return mailed_link(to, "/sign-up/confirm/")


def _confirm(b: Browser, link: str, password: str = SIGN_UP["password"]) -> httpx.Response:
    """Follow the link (its page) and type the password there, as the person does."""
    page = b.get(link)
    return b.post(link, {"password": password}, csrf=csrf_of(page.text) if page.status_code == 200
                  else b.csrf("/sign-in"), follow_redirects=False)


def _pending() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(PendingSignUp)) or 0


def _accounts_with(email: str) -> list[str]:
    with session_scope() as session:
        return [a.username for a in accounts.list_accounts(session, email) if a.email == email]


def test_candidate_registers_with_field_errors_first(sqlite_url: str) -> None:
    b = Browser()
    bad = b.post("/sign-up", {"display_name": "", "email": "not-an-email", "date_of_birth": "2030-01-01",
                              "street": "", "postal_code": "12", "city": "", "country": "NL",
                              "language": "nl", "password": "short", "password_again": "short"})
    assert bad.status_code == 422
    for field in ("display_name", "email", "date_of_birth", "street", "postal_code", "city",
                  "password", "privacy"):
        assert f'id="{field}-error"' in bad.text, field
    assert 'value="not-an-email"' in bad.text  # what was typed stays
    assert _pending() == 0 and _mails("not-an-email") == []  # nothing kept, nothing sent
    sent = b.post("/sign-up", SIGN_UP, follow_redirects=False)
    assert sent.status_code == 200 and "Kijk in uw e-mail" in sent.text
    assert _accounts_with("anna@example.nl") == []  # not before the link is followed
    [(subject, _)] = _mails("anna@example.nl")
    assert subject == "Confirm your account"  # in the language chosen on the form
    confirmed = _confirm(b, _confirm_link("anna@example.nl"))
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/mijn"
    with session_scope() as session:
        anna = accounts.get(session, "anna")
    assert anna.roles == ("candidate",) and not anna.is_staff and anna.language == "en"
    assert anna.address == {"street": "Lange Nieuwstraat 5", "postal_code": "3512 PN",
                            "city": "Utrecht", "country": "NL"}
    assert anna.date_of_birth is not None and anna.date_of_birth.isoformat() == "1985-03-15"
    assert 'lang="en"' in b.get("/account").text  # signed in by the confirmation
    assert _pending() == 0  # the sign-up's data went into the account, and only there
    Browser().sign_in("anna@example.nl", "a long enough one")  # with the password of the form


def test_sign_up_answers_the_same_whether_or_not_the_address_has_an_account(office: str) -> None:
    """The page said 'An account with this e-mail address exists' (422): anyone could ask it
    who has an account. Now the answer is the same; only the address's owner learns more."""
    b = Browser()
    known = b.post("/sign-up", {**SIGN_UP, "email": office}, follow_redirects=False)
    unknown = b.post("/sign-up", {**SIGN_UP, "email": "nobody@example.org"}, follow_redirects=False)
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(office, "ADDRESS") == unknown.text.replace("nobody@example.org",
                                                                         "ADDRESS")
    assert known.headers.get("set-cookie") == unknown.headers.get("set-cookie")
    # The owner is told, with the ways in; nothing was made or kept for the known address.
    [(subject, text)] = _mails(office)
    assert subject == "Iemand probeerde een account te maken met uw e-mailadres"
    site = get_settings().public_url.rstrip("/")
    assert f"{site}/sign-in" in text and f"{site}/password/forgot" in text
    assert "/sign-up/confirm/" not in text
    assert _accounts_with(office) == ["olga"] and _pending() == 1  # nobody@'s alone
    # A second try the same day does not mail the owner again (no flood from a script).
    b.post("/sign-up", {**SIGN_UP, "email": office})
    assert len(_mails(office)) == 1


def test_the_sign_up_answer_does_not_wait_for_the_address_look_up(office: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether the address has an account is looked at after the answer: both answers cost
    the same work (the password's hash), and a mail server that is down is no error page."""
    order: list[str] = []

    def down(*_: object, **__: object) -> None:
        order.append("looked up")
        raise OSError("connection refused")

    monkeypatch.setattr(sign_ups, "start", down)
    for email in (office, "nobody@example.org"):
        sent = Browser().post("/sign-up", {**SIGN_UP, "email": email})
        assert sent.status_code == 200 and "Kijk in uw e-mail" in sent.text
    assert order == ["looked up", "looked up"]  # tried, after the answer was made


def test_a_used_or_expired_confirmation_link_is_a_clear_410(sqlite_url: str) -> None:
    b = Browser()
    b.post("/sign-up", SIGN_UP)
    link = _confirm_link("anna@example.nl")
    assert _confirm(b, link).status_code == 303
    again = Browser().get(link)  # twice, or by someone else: no second account
    assert again.status_code == 410 and "Deze link werkt niet meer" in again.text
    assert _confirm(Browser(), link).status_code == 410
    assert 'href="/sign-up"' in again.text and 'href="/sign-in"' in again.text
    assert _accounts_with("anna@example.nl") == ["anna"]
    assert Browser().get("/sign-up/confirm/made-up").status_code == 410
    # Expired: the link is refused and the sign-up's data deleted.
    Browser().post("/sign-up", {**SIGN_UP, "email": "late@example.org"})
    with session_scope() as session:
        session.execute(update(PendingSignUp).values(
            expires_at=access.wall_now() - timedelta(seconds=1)))
    late = _confirm(Browser(), _confirm_link("late@example.org"))
    assert late.status_code == 410 and _accounts_with("late@example.org") == []
    assert _pending() == 0


def test_a_link_for_an_address_that_got_an_account_meanwhile_makes_none(sqlite_url: str) -> None:
    Browser().post("/sign-up", SIGN_UP)
    link = _confirm_link("anna@example.nl")
    with session_scope() as session:  # the office made her an account in the meantime
        accounts.create(session, "avries", "Anna de Vries", ["candidate"], email="anna@example.nl",
                        now=access.wall_now())
    assert Browser().get(link).status_code == 410
    b = Browser()
    refused = b.post(link, {"password": SIGN_UP["password"]}, form_page="/sign-in",
                     follow_redirects=False)
    assert refused.status_code == 410 and "certflow_session" not in refused.headers.get("set-cookie", "")
    assert _accounts_with("anna@example.nl") == ["avries"] and _pending() == 0


def test_the_newest_sign_up_of_an_address_counts(sqlite_url: str) -> None:
    Browser().post("/sign-up", {**SIGN_UP, "display_name": "Ana de Vries"})  # a typo
    first = _confirm_link("anna@example.nl")
    Browser().post("/sign-up", SIGN_UP)
    second = _confirm_link("anna@example.nl")
    assert _pending() == 1 and Browser().get(first).status_code == 410
    assert _confirm(Browser(), second).status_code == 303
    with session_scope() as session:
        assert accounts.get(session, "anna").display_name == "Anna de Vries"


def test_following_the_link_makes_no_account_and_signs_nobody_in(office: str) -> None:
    """The link made the account and signed in whoever opened it: a mail scanner fetching it
    used it up (the person then got a 410), and a link someone sent to a signed-in person
    signed that browser into the sender's account. Now the link only shows a form."""
    Browser().post("/sign-up", SIGN_UP)
    link = _confirm_link("anna@example.nl")
    scanner = Browser()
    for _ in range(3):
        page = scanner.get(link, follow_redirects=False)
        assert page.status_code == 200 and "certflow_session" not in page.headers.get("set-cookie", "")
    assert "<h1>Bevestig uw account</h1>" in page.text and f'action="{link}"' in page.text
    assert "Heeft u zich niet aangemeld? Dan kunt u dit negeren; er gebeurt niets." in page.text
    assert _accounts_with("anna@example.nl") == [] and _pending() == 1
    olga = Browser()
    olga.sign_in(office)
    assert olga.get(link).status_code == 200
    assert "Olga Tester" in olga.get("/account").text  # still herself, in her own account
    assert _accounts_with("anna@example.nl") == [] and _pending() == 1
    # After all that, the link still works for the one who signed up.
    assert _confirm(Browser(), link).status_code == 303
    assert _accounts_with("anna@example.nl") == ["anna"]


def test_a_sign_up_with_someone_elses_address_cannot_be_confirmed_without_its_password(
        sqlite_url: str) -> None:
    """Someone signed up with Anna's address (she had no account) and a password of their
    own; Anna followed the link in the mail, the account was made with their password and she
    was signed in; later they signed in as her. Now the account needs the sign-up's password."""
    theirs = "the intruder's own password"
    Browser().post("/sign-up", {**SIGN_UP, "password": theirs, "password_again": theirs})
    link = _confirm_link("anna@example.nl")
    anna = Browser()
    assert anna.get(link).status_code == 200 and _accounts_with("anna@example.nl") == []
    wrong = anna.post(link, {"password": "anna's own password"}, follow_redirects=False)
    assert wrong.status_code == 422 and 'id="password-error"' in wrong.text
    assert "Dit is niet het wachtwoord dat u bij het aanmelden koos." in wrong.text
    assert "certflow_session" not in wrong.headers.get("set-cookie", "")
    empty = anna.post(link, {"password": ""}, follow_redirects=False)
    assert empty.status_code == 422 and "Vul uw wachtwoord in." in empty.text
    assert _accounts_with("anna@example.nl") == [] and _pending() == 1  # nothing used up
    # Anna signs up herself: hers is the newest sign-up, and the only one that counts.
    Browser().post("/sign-up", SIGN_UP)
    assert anna.get(link).status_code == 410
    assert _confirm(anna, _confirm_link("anna@example.nl")).status_code == 303
    intruder = Browser().post("/sign-in", {"email": "anna@example.nl", "password": theirs})
    assert intruder.status_code == 401


def test_wrong_passwords_at_the_link_are_limited_and_then_drop_the_sign_up(sqlite_url: str) -> None:
    """The link's holder cannot guess the password: wrong ones count as failed sign-ins of the
    address, and at the limit the sign-up is deleted; its person signs up again."""
    Browser().post("/sign-up", SIGN_UP)
    link = _confirm_link("anna@example.nl")
    guesser = Browser()
    for n in range(get_settings().sign_in_max_failures_per_email - 1):
        assert _confirm(guesser, link, f"guess number {n}").status_code == 422
    assert _pending() == 1
    dropped = _confirm(guesser, link, "one guess too many")
    assert dropped.status_code == 410 and "te vaak een verkeerd wachtwoord" in dropped.text
    assert 'href="/sign-up"' in dropped.text and _pending() == 0
    assert _confirm(Browser(), link).status_code == 410  # not even with the right one now
    assert _accounts_with("anna@example.nl") == []
    # A new sign-up of the address counts afresh.
    Browser().post("/sign-up", SIGN_UP)
    assert _confirm(Browser(), _confirm_link("anna@example.nl"), "a typo").status_code == 422
    assert _confirm(Browser(), _confirm_link("anna@example.nl")).status_code == 303


def test_a_links_wrong_passwords_add_up_over_its_whole_life(sqlite_url: str) -> None:
    """Waiting out the sign-in window between guesses does not give a guesser more: the link
    takes so many wrong passwords in all, then the sign-up is gone."""
    Browser().post("/sign-up", SIGN_UP)
    link = _confirm_link("anna@example.nl")
    window = timedelta(minutes=get_settings().sign_in_window_minutes + 1)
    for n in range(get_settings().sign_in_max_failures_per_email - 1):
        assert _confirm(Browser(), link, f"guess number {n}").status_code == 422
        with session_scope() as s:  # the window passes: those failed sign-ins count no more
            for attempt in s.scalars(select(SignInAttempt)):
                attempt.at -= window
    dropped = _confirm(Browser(), link, "one guess too many")
    assert dropped.status_code == 410 and "te vaak een verkeerd wachtwoord" in dropped.text
    assert _pending() == 0 and _accounts_with("anna@example.nl") == []


def test_a_client_with_too_many_wrong_passwords_waits_at_the_link_too(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_SIGN_IN_MAX_FAILURES_PER_IP", "2")
    from certflow.settings import reset_settings

    reset_settings()
    Browser().post("/sign-up", SIGN_UP)
    link = _confirm_link("anna@example.nl")
    b = Browser()
    for n in range(2):
        b.post("/sign-in", {"email": f"guess{n}@example.org", "password": "x"})
    refused = _confirm(b, link)
    assert refused.status_code == 429 and "Te veel mislukte pogingen" in refused.text
    assert "certflow_session" not in refused.headers.get("set-cookie", "")
    assert _accounts_with("anna@example.nl") == [] and _pending() == 1


def test_the_sign_up_mails_carry_nothing_the_visitor_typed(office: str) -> None:
    """The confirmation mail opened with the name typed on the form, to any address ('Dear Uw
    betaling is mislukt, betaal via https://evil.example/...', from CMI's domain). It greets
    no one by name now, and names no one beside the address; the warning to an address's
    owner greets the owner by the account's own name."""
    lure = "Uw betaling is mislukt, betaal via https://evil.example/pay"
    for email, language in (("nobody@example.org", "nl"), ("someone@example.org", "en"),
                            (office, "en")):
        Browser().post("/sign-up", {**SIGN_UP, "display_name": lure, "email": email,
                                    "language": language})
    box = mailbox.Maildir(get_settings().var_dir / "mail", create=True)
    mails = {m["To"]: m for m in box}
    assert sorted(mails) == sorted(["nobody@example.org", "someone@example.org",
                                    "Olga Tester <olga@example.org>"])
    for mail in mails.values():
        whole = mail.as_string() + "".join(part.get_payload(decode=True).decode()
                                           for part in mail.walk() if not part.is_multipart())
        assert "evil.example" not in whole and "betaling" not in whole, mail["To"]

    def parts(to: str) -> tuple[str, str]:
        text, html = (p.get_payload(decode=True).decode() for p in mails[to].walk()
                      if not p.is_multipart())
        return text, html

    for to, greeting in (("nobody@example.org", "Beste heer/mevrouw,"),
                         ("someone@example.org", "Dear Sir or Madam,"),
                         ("Olga Tester <olga@example.org>", "Beste Olga Tester,")):
        text, html = parts(to)
        assert greeting in text and greeting in html, to


def test_the_confirmation_link_points_at_the_site_whatever_host_the_request_names(
        sqlite_url: str) -> None:
    b = Browser()
    b.post("/sign-up", SIGN_UP, headers={"Host": "attacker.example"})
    [(_, text)] = _mails("anna@example.nl")
    assert "attacker.example" not in text
    assert get_settings().public_url.rstrip("/") + "/sign-up/confirm/" in text
    assert _confirm(b, _confirm_link("anna@example.nl")).status_code == 303


def test_expired_sign_ups_are_deleted_by_the_next_sign_up_or_sign_in(office: str) -> None:
    """A pending sign-up is personal data of someone without an account: once its link has
    expired nothing needs it, and no sweeper runs for it."""
    settings = get_settings()
    long_ago = access.wall_now() - timedelta(hours=settings.sign_up_confirm_hours + 1)
    old = sign_ups.SignUp(email="gone@example.org", display_name="Gone", language="nl",
                          address={}, date_of_birth=None, password_hash="x")

    def left() -> list[str]:
        with session_scope() as session:
            return sorted(session.scalars(select(PendingSignUp.email)))

    with session_scope() as session:
        sign_ups.start(session, settings, old, now=long_ago)
    Browser().post("/sign-up", {**SIGN_UP, "email": "new@example.org"})
    assert left() == ["new@example.org"]
    with session_scope() as session:
        sign_ups.start(session, settings, old, now=long_ago)
    assert left() == ["gone@example.org", "new@example.org"]
    Browser().sign_in(office)
    assert left() == ["new@example.org"]


def _reset_link(var: Path) -> str:
    box = mailbox.Maildir(var / "mail", create=False)
    bodies = [m.get_payload()[0].get_payload(decode=True).decode() for m in box]
    public = re.escape(get_settings().public_url.rstrip("/"))
    links = re.findall(public + r"(/password/reset/\S+)", "\n".join(bodies))
    assert links, bodies
    return links[-1]


def test_password_reset_by_email_is_single_use(office: str) -> None:
    b = Browser()
    sent = b.post("/password/forgot", {"email": office})
    assert sent.status_code == 200 and "Kijk in uw e-mail" in sent.text
    unknown = b.post("/password/forgot", {"email": "nobody@example.org"})
    assert unknown.status_code == 200 and "Kijk in uw e-mail" in unknown.text  # same answer
    link = _reset_link(get_settings().var_dir)
    mismatch = b.post(link, {"password": "new password 1", "password_again": "other"})
    assert mismatch.status_code == 422 and 'id="password_again-error"' in mismatch.text
    done = b.post(link, {"password": "new password 1", "password_again": "new password 1"},
                  follow_redirects=False)
    assert done.headers["location"] == "/sign-in?reset=1"
    assert b.get(link).status_code == 410  # used up
    Browser().sign_in(office, "new password 1")


def test_a_script_cannot_make_certflow_mail_an_address_over_and_over(office: str) -> None:
    """'Forgot your password' and the sign-up mailed whoever's address was typed, as often as
    a script posted it: a mail bomb sent from CMI's own domain. Now at most
    ``mail_requests_per_address`` an hour per address, each kind; the refusal is the same for
    an address with and without an account, and nothing more is mailed or kept."""
    limit = get_settings().mail_requests_per_address
    for email in (office, "nobody@example.org"):
        for _ in range(limit):
            assert Browser().post("/password/forgot", {"email": email}).status_code == 200
    assert len(_mails(office)) == limit
    refused = {email: Browser().post("/password/forgot", {"email": email})
               for email in (office, "NOBODY@example.org")}  # the address, however written
    assert [r.status_code for r in refused.values()] == [429, 429]
    assert "Kijk in uw spammap, of wacht 60 minuten" in refused[office].text
    assert 'id="email-error"' in refused[office].text and f'value="{office}"' in refused[office].text
    same = [re.sub(r"[0-9a-f]{64}", "CSRF", r.text.replace(email, "A"))  # each browser's token
            for email, r in refused.items()]
    assert same[0] == same[1]
    assert len(_mails(office)) == limit  # no further mail
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(PasswordReset)) == limit
    # The sign-up counts on its own: a reset asked for does not block registering.
    for _ in range(limit):
        assert Browser().post("/sign-up", SIGN_UP).status_code == 200
    assert len(_mails("anna@example.nl")) == limit
    again = Browser().post("/sign-up", SIGN_UP)
    assert again.status_code == 429 and 'id="email-error"' in again.text
    assert 'value="Anna de Vries"' in again.text  # what was typed stays
    assert len(_mails("anna@example.nl")) == limit and _pending() == 1
    # An hour later the address may ask again; the old requests are gone, not kept.
    with session_scope() as session:
        session.execute(update(MailRequest).values(
            at=access.wall_now() - timedelta(minutes=get_settings().mail_request_window_minutes + 1)))
    assert Browser().post("/password/forgot", {"email": office}).status_code == 200
    assert len(_mails(office)) == limit + 1
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(MailRequest)) == 1


def test_one_client_cannot_mail_many_addresses(office: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_MAIL_REQUESTS_PER_IP", "4")
    from certflow.settings import reset_settings

    reset_settings()
    b = Browser()
    for n in range(2):
        assert b.post("/password/forgot", {"email": f"x{n}@example.org"}).status_code == 200
        assert b.post("/sign-up", {**SIGN_UP, "email": f"y{n}@example.org"}).status_code == 200
    assert b.post("/password/forgot", {"email": office}).status_code == 429
    assert b.post("/sign-up", {**SIGN_UP, "email": "z@example.org"}).status_code == 429
    assert _mails(office) == [] and _mails("z@example.org") == []
    with session_scope() as session:  # only hashes are kept: no address, no IP
        rows = session.scalars(select(MailRequest)).all()
    assert len(rows) == 4 and all(len(r.email_hash) == len(r.ip_hash) == 64 for r in rows)


def test_the_reset_link_points_at_the_site_whatever_host_the_request_names(office: str) -> None:
    """Built from the request, the link went wherever its Host header said: a stranger asking
    for someone's reset with ``Host: attacker.example`` got the token sent to their server."""
    sent = Browser().client.post("/password/forgot", data={"email": office},
                                 headers={"Host": "attacker.example"})
    assert sent.status_code in (200, 403)  # (403: the CSRF check may refuse it outright)
    box = mailbox.Maildir(get_settings().var_dir / "mail", create=True)
    bodies = "\n".join(m.get_payload()[0].get_payload(decode=True).decode() for m in box)
    assert "attacker.example" not in bodies
    b = Browser()
    b.post("/password/forgot", {"email": office}, headers={"Host": "attacker.example"})
    link = _reset_link(get_settings().var_dir)
    assert b.get(link).status_code == 200


def test_the_reset_answer_does_not_wait_for_the_mail(office: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mail goes out after the answer: a known address no longer answers later than an
    unknown one by the time the mail takes, and a mail server that is down is not the
    visitor's error page."""
    from certflow.services import access

    order: list[str] = []

    def down(*_: object, **__: object) -> None:
        order.append("mail")
        raise OSError("connection refused")

    monkeypatch.setattr(access, "send_reset_mail", down)
    b = Browser()
    sent = b.post("/password/forgot", {"email": office})
    assert sent.status_code == 200 and "Kijk in uw e-mail" in sent.text
    assert order == ["mail"]  # tried, after the answer was made


def test_reset_link_expires(office: str) -> None:
    settings = get_settings()
    with session_scope() as session:
        _, token = access.request_reset(session, settings, office)  # type: ignore[misc]
    later = access.wall_now() + timedelta(minutes=settings.password_reset_minutes + 1)
    with session_scope() as session:
        assert access.reset_account(session, token, now=later) is None
        assert access.reset_account(session, token) is not None


def test_language_switch_is_remembered_for_the_account(office: str) -> None:
    b = Browser()
    b.sign_in(office)
    b.post("/language", {"language": "en", "back": "/account"}, form_page="/account")
    page = b.get("/account")
    assert 'lang="en"' in page.text and "My account" in page.text
    fresh = Browser()  # another browser, same person: their own language
    fresh.sign_in(office)
    assert 'lang="en"' in fresh.get("/account").text


def test_session_cookie_is_secure_over_https(office: str) -> None:
    from fastapi.testclient import TestClient

    from certflow.web.app import create_app

    b = Browser(TestClient(create_app(), base_url="https://cmi.example"))
    cookie = b.sign_in(office).headers["set-cookie"]
    assert "certflow_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    plain = Browser().sign_in(office).headers["set-cookie"]
    assert "Secure" not in plain  # http://127.0.0.1 keeps working


def test_old_failed_attempts_are_pruned(office: str) -> None:
    from sqlalchemy import func, select

    from certflow.store.accounts import SignInAttempt

    settings = get_settings()
    long_ago = access.wall_now() - timedelta(minutes=settings.sign_in_window_minutes + 1)
    with session_scope() as session:
        access.sign_in(session, settings, office, "wrong", "1.1.1.1", now=long_ago)
        access.sign_in(session, settings, "other@example.org", "wrong", "1.1.1.2")
        assert session.scalar(select(func.count()).select_from(SignInAttempt)) == 1


def test_apps_made_in_one_process_keep_their_own_dependency_overrides(office: str) -> None:
    """The pages' routes are built once per process and each app copies them: an override on
    one app (of who is signed in, say) is not what another app's pages use."""
    from fastapi.testclient import TestClient

    from certflow.web.app import create_app
    from certflow.web.pages.inbox import Worker

    def broken() -> None:
        raise RuntimeError("the other app's account")

    first, second = create_app(), create_app()
    first.dependency_overrides[Worker.__metadata__[0].dependency] = broken
    b = Browser(TestClient(second))
    b.sign_in(office)
    assert b.get("/inbox").status_code == 200
    c = Browser(TestClient(first, raise_server_exceptions=False))
    c.sign_in(office)
    assert c.get("/inbox").status_code == 500
