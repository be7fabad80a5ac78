"""Every page of accounts and access in Chromium, as the people who use them: a candidate registers
(after a wrong first try, confirming by the link in the mail and her password), staff sign in
and complete a person's data, an admin makes an account, someone resets a password, anyone
searches the public register. Each page is checked with axe-core and screenshotted."""

from __future__ import annotations

import mailbox
import re
from typing import Callable

import pytest

from tests.browser.conftest import PASSWORD, UI, App

pytestmark = pytest.mark.browser

REGISTERED = """
from datetime import date, datetime, timezone
from certflow.store.db import session_scope
from certflow.store.register import Certificate, RegisterEntry
from tests.support import create_user
# Register numbers of 2019: the real certificates issued by the other browser tests in this
# session (one app for all) are numbered by the 2026 counter and must not collide.
now = datetime.now(timezone.utc)
with session_scope() as s:
    for n, (user, name, status) in enumerate([("vries", "Anna de Vries", "valid"),
                                              ("vriesj", "Jan de Vries", "lapsed")]):
        create_user(s, user, name, ["professional"])
        s.add(Certificate(id=f"c{n}", idempotency_key=f"k{n}", holder=user,
                          register_number=f"RL-2019-0000{n + 1}", level="RL",
                          specialisation="Outplacement" if n == 0 else None,
                          valid_from=date(2026, 3, 15), valid_until=date(2029, 3, 15),
                          status=status, language="nl", created_at=now))
        s.flush()
        s.add(RegisterEntry(id=f"e{n}", holder=user, register_number=f"RL-2019-0000{n + 1}",
                            certificate_id=f"c{n}", status=status,
                            valid_until=date(2029, 3, 15), updated_at=now))
"""


def test_public_register_search(app: App, ui: Callable[..., UI]) -> None:
    app.run(REGISTERED)
    visitor = ui()
    visitor.visit("/register", shot="register-empty")
    visitor.fill("Naam of registernummer", "vries")
    visitor.click("Zoeken")
    rows = visitor.page.locator("#results tbody tr")
    rows.first.wait_for()
    assert rows.count() == 2
    text = visitor.page.locator("#results").inner_text()
    assert "Anna de Vries" in text and "RL-2019-00001" in text and "15 maart 2029" in text
    assert "Geldig" in text and "Verlopen" in text
    assert "@" not in text  # nothing but the public columns
    visitor.check("register-results")
    visitor.visit("/register?q=RL-2019-00002")
    assert visitor.page.locator("#results tbody tr").count() == 1
    visitor.visit("/register?q=nobody-at-all", shot="register-none")
    assert "Er is geen geregistreerde professional gevonden" in visitor.page.inner_text("main")


def test_candidate_registers_after_fixing_errors(app: App, ui: Callable[..., UI]) -> None:
    browser = ui()
    browser.visit("/", shot="sign-in")
    assert browser.page.url.endswith("/sign-in")
    browser.page.get_by_role("link", name="Account aanmaken").click()
    browser.check("sign-up")
    browser.fill("Volledige naam", "Bea Bakker")
    browser.fill("E-mailadres", "bea@example.nl")
    browser.fill("Postcode", "12")
    browser.fill("Kies een wachtwoord", "kort")
    browser.click("Account aanmaken")
    summary = browser.page.locator("[data-error-summary]")
    summary.wait_for()
    assert "Vul uw geboortedatum in." in summary.inner_text()
    assert "Vul een Nederlandse postcode in, zoals 3511 AA." in summary.inner_text()
    assert browser.page.get_by_label("E-mailadres", exact=True).input_value() == "bea@example.nl"
    browser.check("sign-up-errors")
    browser.page.get_by_role("link", name="Vul uw geboortedatum in.").click()
    assert browser.page.evaluate("document.activeElement.id") == "date_of_birth"
    browser.fill("Geboortedatum", "1990-05-17")
    browser.fill("Straat en huisnummer", "Vredenburg 40")
    browser.fill("Postcode", "3511 BD")
    browser.fill("Woonplaats", "Utrecht")
    browser.fill("Kies een wachtwoord", "bea's goede wachtwoord")
    browser.fill("Herhaal het wachtwoord", "bea's goede wachtwoord")
    browser.page.get_by_label(re.compile("Ik ga ermee akkoord")).check()
    browser.click("Account aanmaken")
    browser.page.wait_for_selector("h1:has-text('Kijk in uw e-mail')")
    assert "bea@example.nl" in browser.page.inner_text("main")
    browser.check("sign-up-sent")
    link = app.mail_link("bea@example.nl", "/sign-up/confirm/")
    english = ui(None, "en-GB")  # the same page in English; opening it uses nothing up
    assert english.visit(link, shot="sign-up-confirm-en").status == 200
    assert english.page.inner_text("h1") == "Confirm your account"
    assert "Did you not sign up? Then ignore this; nothing happens." in english.page.inner_text("main")
    assert browser.visit(link, shot="sign-up-confirm").status == 200  # a form, no account yet
    assert "Heeft u zich niet aangemeld? Dan kunt u dit negeren; er gebeurt niets." in \
        browser.page.inner_text("main")
    browser.fill("Wachtwoord", "bea's andere wachtwoord")
    browser.click("Bevestigen")
    summary = browser.page.locator("[data-error-summary]")
    summary.wait_for()
    assert "Dit is niet het wachtwoord dat u bij het aanmelden koos." in summary.inner_text()
    browser.check("sign-up-confirm-wrong")
    browser.fill("Wachtwoord", "bea's goede wachtwoord")
    browser.click("Bevestigen")  # the account is made now, and she is signed in
    browser.page.wait_for_url(re.compile(r"/mijn"))
    assert "Bea Bakker" in browser.page.inner_text("header")
    assert "Kandidaat" in browser.page.inner_text("header")
    used = ui()  # the link works once
    assert used.visit(link, shot="sign-up-link-used").status == 410
    assert "Deze link werkt niet meer" in used.page.inner_text("h1")
    assert used.page.get_by_role("link", name="Opnieuw aanmelden").count() == 1


def test_staff_sign_in_and_complete_a_persons_address(app: App, ui: Callable[..., UI]) -> None:
    office = app.person("olga", ["office"], is_staff=True)
    app.person("karel", ["candidate"])
    browser = ui()
    browser.visit("/sign-in")
    browser.fill("E-mailadres", office)
    browser.fill("Wachtwoord", "wrong password")
    browser.click("Inloggen")
    assert "Het e-mailadres of wachtwoord klopt niet." in browser.page.inner_text("main")
    browser.check("sign-in-refused")
    browser.fill("Wachtwoord", PASSWORD)
    browser.click("Inloggen")
    browser.page.wait_for_url(re.compile(r"/(inbox|account)"))
    browser.page.get_by_role("link", name="Personen").click()
    browser.check("people")
    browser.page.get_by_role("link", name="Karel Tester").click()
    browser.check("person")
    browser.fill("Straat en huisnummer", "Neude 11")
    browser.fill("Postcode", "3512ag")
    browser.fill("Woonplaats", "Utrecht")
    browser.click("Wijzigingen opslaan")
    assert "Uw wijzigingen zijn opgeslagen." in browser.page.inner_text("main")
    assert browser.page.get_by_label("Postcode", exact=True).input_value() == "3512 AG"
    browser.check("person-saved")


def test_admin_creates_a_staff_account_with_two_roles(app: App, ui: Callable[..., UI]) -> None:
    app.person("ada", ["admin"], is_staff=True)
    admin = ui("ada")
    admin.visit("/admin/people/new", shot="new-person")
    admin.click("Account aanmaken")
    assert "Kies minstens één rol." in admin.page.inner_text("[data-error-summary]")
    admin.check("new-person-errors")
    admin.page.get_by_label("Mentor", exact=True).check()
    admin.page.get_by_label("Assessor", exact=True).check()
    admin.fill("Volledige naam", "Meta Mentor")
    admin.fill("E-mailadres", "meta@example.nl")
    admin.click("Account aanmaken")
    admin.page.wait_for_url(re.compile(r"/admin/people/meta"))
    assert "Mentor, Assessor" in admin.page.inner_text("main")
    # Someone without the admin role cannot reach the page.
    app.person("otto", ["office"], is_staff=True)
    clerk = ui("otto")
    clerk.visit("/admin/people/new", shot="forbidden")
    assert "Geen toegang" in clerk.page.inner_text("h1")


def test_password_reset_by_email(app: App, ui: Callable[..., UI]) -> None:
    email = app.person("rita", ["candidate"])
    browser = ui()
    browser.visit("/sign-in")
    browser.page.get_by_role("link", name="Wachtwoord vergeten?").click()
    browser.check("forgot")
    browser.fill("E-mailadres", email)
    browser.click("Stuur mij een link")
    browser.check("forgot-sent")
    box = mailbox.Maildir(app.var / "mail", create=False)
    texts = [m.get_payload()[0].get_payload(decode=True).decode() for m in box]
    link = [re.search(r"(/password/reset/\S+)", t) for t in texts if "rita" in t or "Rita" in t]
    assert link and link[-1], texts
    browser.visit(link[-1].group(1), shot="reset")
    browser.fill("Nieuw wachtwoord", "rita's nieuwe wachtwoord")
    browser.fill("Herhaal het nieuwe wachtwoord", "rita's nieuwe wachtwoord")
    browser.click("Wachtwoord instellen")
    assert "Uw nieuwe wachtwoord is ingesteld" in browser.page.inner_text("main")
    browser.visit(link[-1].group(1), shot="reset-used")
    assert "Deze link werkt niet meer" in browser.page.inner_text("h1")


def test_account_page_language_switch_and_forged_csrf(app: App, ui: Callable[..., UI]) -> None:
    app.person("lena", ["candidate"], address={"street": "Neude 1", "postal_code": "3512 AE",
                                                "city": "Utrecht", "country": "NL"})
    lena = ui("lena")
    lena.visit("/account", shot="account")
    lena.page.get_by_role("button", name="English").click()
    lena.page.wait_for_selector("html[lang=en]")
    assert lena.page.locator("h1").inner_text() == "My account"
    lena.check("account-en")
    # A form whose token was tampered with is refused and changes nothing.
    lena.page.eval_on_selector_all("input[name=csrf_token]", "els => els.forEach(e => e.value = 'forged')")
    lena.fill("Full name", "Someone Else")
    lena.click("Save changes")
    assert "could not be sent" in lena.page.inner_text("h1")
    lena.check("csrf-refused")
    lena.visit("/account")
    assert lena.page.get_by_label("Full name", exact=True).input_value() == "Lena Tester"


