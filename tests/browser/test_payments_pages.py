"""The payments page in Chromium, as an office clerk uses it: from the inbox through the menu
to "Betalingen", a first try without a file (the error next to the field and at the top), the
bank's CAMT.053 statement imported (one transfer pays an application's invoice and moves it
on, one names nothing, one pays that invoice a second time; on a phone too), the nameless one
linked to its invoice (offered among the unpaid invoices) after a first try without a number,
and the second one marked handled with a note once refunded. Each page is checked with
axe-core and screenshotted."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.browser.conftest import UI, App
from tests.web.test_records_api import statement

pytestmark = pytest.mark.browser

INVOICED = """
import json
from sqlalchemy import select
from certflow.bootstrap import engine
from certflow.engine.facade import Actor
from certflow.store.billing import Invoice
from certflow.store.db import session_scope
from tests.support import Harness
e, office = engine(), Actor("pay-office", ("office",), True)
out = []
for who in ("pay_cas", "pay_bea"):
    view = e.start(Actor(who, ("candidate",)), "certification", "APP-" + who,
                   {"candidate": who, "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    Harness(e).run_jobs()
    [task] = [t for t in e.instance(office, view.id).open_tasks if t.element_id == "check_eligibility"]
    e.claim(office, task.id)
    e.complete(office, task.id, {"eligible": True, "remarks": "diploma gezien"})
    Harness(e).run_jobs()
    number = e.instance(office, view.id).data["invoice_number"]
    with session_scope() as s:
        reference = s.scalar(select(Invoice.payment_reference).where(Invoice.number == number))
    out.append({"instance": view.id, "number": number, "reference": reference})
print(json.dumps(out))
"""

OPEN_STEPS = """
import json
from certflow.bootstrap import engine
from certflow.engine.facade import Actor
print(json.dumps([t.element_id for t in engine().instance(Actor.system(), {id!r}).open_tasks]))
"""

ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}


def test_the_office_imports_a_statement_and_links_a_payment(app: App, ui: Callable[..., UI],
                                                            tmp_path: Path) -> None:
    app.person("pay_cas", ["candidate"], address=ADDRESS)
    app.person("pay_bea", ["candidate"], address=ADDRESS)
    app.person("pay_olly", ["office"], is_staff=True)
    cas, bea = app.run(INVOICED)
    bank = tmp_path / "afschrift-2026-03-09.xml"
    bank.write_bytes(statement([("PAY-1", "786.50", cas["reference"]),
                                ("PAY-2", "786.50", "text:inschrijving B. Tester"),
                                ("PAY-3", "786.50", f"text:factuur {cas['number']} nogmaals")], statement_id="PAY-STMT"))

    office = ui("pay_olly")
    office.visit("/inbox")
    office.page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Betalingen").click()
    office.page.wait_for_url("**/payments")
    office.check("payments-list")

    office.click("Afschrift inlezen")  # no file chosen
    summary = office.page.locator("[data-error-summary]")
    summary.wait_for()
    assert "Kies het bankafschrift" in summary.inner_text()
    assert "Kies het bankafschrift" in office.page.locator("#statement-error").inner_text()
    office.check("payments-import-error")

    office.page.get_by_label("Bankafschrift (CAMT.053)", exact=True).set_input_files(str(bank))
    office.click("Afschrift inlezen")
    report = office.page.locator("#report")
    report.wait_for()
    said = report.inner_text()
    assert "Afschrift ingelezen: afschrift-2026-03-09.xml" in said
    assert f"Factuur {cas['number']} (Pay_Cas Tester) is betaald." in said
    assert "Het proces dat op deze betaling wachtte, is bericht en gaat verder." in said
    assert "Geen factuurnummer of betalingskenmerk herkend" in said
    office.check("payments-imported")
    assert app.run(OPEN_STEPS.format(id=cas["instance"])) == ["assign_mentor"]
    # On a phone the report's and the queue's tables scroll in their own box.
    office.page.set_viewport_size({"width": 390, "height": 844})
    assert office.page.evaluate("document.documentElement.scrollWidth") <= 390
    office.check("payments-imported-phone")
    office.page.set_viewport_size({"width": 1280, "height": 900})

    row = office.page.locator("table.payments tbody tr", has_text="inschrijving B. Tester")
    assert "Niet herkend" in row.inner_text() and "€ 786,50" in row.inner_text()
    row.get_by_role("link", name="Koppelen aan een factuur").click()
    office.page.wait_for_url("**/payments/*")
    office.check("payments-payment")
    # The unpaid invoices to pick from, by number or by the customer's name.
    choice = office.page.locator(f"#invoice_number-choices option[value='{bea['number']}']")
    assert "Pay_Bea Tester" in (choice.get_attribute("label") or "")

    office.click("Betaling koppelen")  # no number typed
    office.page.locator("[data-error-summary]").wait_for()
    assert "Vul het factuurnummer in" in office.page.locator("#invoice_number-error").inner_text()
    office.check("payments-link-error")
    office.fill("Factuurnummer", bea["number"])
    office.click("Betaling koppelen")
    done = office.page.locator("#done")
    done.wait_for()
    assert f"gekoppeld aan factuur {bea['number']} (Pay_Bea Tester)" in done.inner_text()
    assert "is bericht en gaat verder" in done.inner_text()
    assert office.page.locator("table.payments tbody tr", has_text="inschrijving B. Tester").count() == 0
    office.check("payments-linked")
    assert app.run(OPEN_STEPS.format(id=bea["instance"])) == ["assign_mentor"]

    # Cas paid twice: the second is too much, refunded outside certflow and marked handled.
    row = office.page.locator("table.payments tbody tr", has_text="nogmaals")
    assert "Te veel betaald" in row.inner_text() and cas["number"] in row.inner_text()
    row.get_by_role("link", name="Bekijken").click()
    office.page.wait_for_url("**/payments/*")
    office.fill("Wat er is gedaan", "Op 10 maart teruggestort aan de betaler")
    office.click("Als afgehandeld markeren")
    office.page.locator("#done").wait_for()
    assert "is afgehandeld en staat niet meer in de lijst" in office.page.locator("#done").inner_text()
    assert office.page.locator("table.payments tbody tr", has_text="nogmaals").count() == 0
    office.check("payments-handled")

    office.visit("/payments/new", shot="payments-new")
