"""A candidate changes their e-mail address in Chromium: from Mijn CMI to Mijn account, the new
address waits for the link mailed to it; the link, opened in a browser that is not signed in,
asks to sign in first and comes back to a page with a button; the address changes only then.
Each page is checked with axe-core and screenshotted."""

from __future__ import annotations

import re
from typing import Callable

import pytest

from tests.browser.conftest import PASSWORD, UI, App

pytestmark = pytest.mark.browser

CONFIRM = "/account/email/confirm/"


def test_candidate_changes_their_address_and_confirms_it_from_the_mail(
        app: App, ui: Callable[..., UI]) -> None:
    old = app.person("emma", ["candidate"], address={"street": "Neude 1", "postal_code": "3512 AE",
                                                      "city": "Utrecht", "country": "NL"})
    emma = ui("emma")
    emma.visit("/mijn")
    emma.page.get_by_role("link", name="Persoonsgegevens en wachtwoord").click()
    emma.page.wait_for_url(re.compile(r"/account$"))
    emma.fill("Geboortedatum", "1988-06-01")
    emma.fill("E-mailadres", "emma.nieuw@example.nl")
    emma.click("Wijzigingen opslaan")
    emma.page.wait_for_url(re.compile(r"/account\?saved=email"))
    main = emma.page.inner_text("main")
    assert "Uw e-mailadres verandert als u de link volgt" in main
    assert "Wij hebben een link gestuurd naar emma.nieuw@example.nl" in main
    assert f"Tot dan blijven wij {old} gebruiken." in main
    assert emma.page.get_by_label("E-mailadres", exact=True).input_value() == old  # not yet
    emma.check("email-change-pending")

    # The mail is read on another device, not signed in: sign in first, then back to the link.
    link = app.mail_link("emma.nieuw@example.nl", CONFIRM)
    phone = ui()
    phone.visit(link)
    phone.page.wait_for_url(re.compile(r"/sign-in\?next="))
    phone.fill("E-mailadres", old)
    phone.fill("Wachtwoord", PASSWORD)
    phone.click("Inloggen")
    phone.page.wait_for_url(re.compile(re.escape(CONFIRM)))
    assert phone.page.locator("h1").inner_text() == "Bevestig uw nieuwe e-mailadres"
    summary = phone.page.inner_text("main")
    assert old in summary and "emma.nieuw@example.nl" in summary
    phone.check("email-change-confirm")
    phone.click("Bevestigen")
    phone.page.wait_for_url(re.compile(r"/account\?saved=email-changed"))
    assert "Uw e-mailadres is gewijzigd." in phone.page.inner_text("main")
    assert phone.page.get_by_label("E-mailadres", exact=True).input_value() == "emma.nieuw@example.nl"
    assert "wacht op bevestiging" not in phone.page.inner_text("main")
    phone.check("email-change-done")

    # The link works once.
    assert phone.visit(link, shot="email-change-link-used").status == 410
    assert "Deze link werkt niet meer" in phone.page.inner_text("h1")


def test_the_link_is_its_owners_and_an_address_taken_meanwhile_changes_nothing(
        app: App, ui: Callable[..., UI]) -> None:
    old = app.person("lars", ["candidate"], address={"street": "Neude 2", "postal_code": "3512 AE",
                                                      "city": "Utrecht", "country": "NL"})
    app.person("nina", ["candidate"])
    lars = ui("lars")
    lars.visit("/account")
    lars.fill("Geboortedatum", "1979-02-11")
    lars.fill("E-mailadres", "gewild@example.nl")
    lars.click("Wijzigingen opslaan")
    lars.page.wait_for_url(re.compile(r"/account\?saved=email"))
    link = app.mail_link("gewild@example.nl", CONFIRM)
    # Someone else signed in who opens the link is turned away; it stays Lars's.
    nina = ui("nina")
    assert nina.visit(link, shot="email-change-not-yours").status == 403
    assert nina.page.locator("h1").inner_text() == "Deze link is voor een ander account"
    lars.visit(link)
    app.person("gerrit", ["candidate"], email="gewild@example.nl")  # meanwhile
    lars.click("Bevestigen")
    lars.page.wait_for_selector("h1:has-text('Uw e-mailadres is niet gewijzigd')")
    assert "gewild@example.nl" in lars.page.inner_text("main") and old in lars.page.inner_text("main")
    lars.check("email-change-taken")
    lars.page.get_by_role("link", name="Naar Mijn account").click()
    assert lars.page.get_by_label("E-mailadres", exact=True).input_value() == old
