"""The rest of Mijn CMI and the inbox in Chromium: a case page, a recertification the guard
refuses (with what to do instead), an order, another person's case id, a saved and shared
filter, bulk assignment, and the stale page when a colleague completed the task first. Each
page is checked with axe-core and screenshotted (tests/browser/artifacts/pages-*.png)."""

from __future__ import annotations

import re
from typing import Callable

import pytest

from tests.browser.conftest import UI, App
from tests.browser.test_portal_flow import settle

pytestmark = pytest.mark.browser

ADDRESS = {"street": "Neude 1", "postal_code": "3512 AE", "city": "Utrecht", "country": "NL"}
START = """
from certflow.bootstrap import build_engine
from certflow.engine.facade import Actor
e = build_engine()
for who in ("rob", "ria"):
    e.start(Actor(who, ("candidate",)), "certification", f"APP-{{who}}",
            {{"candidate": who, "eligibility_route": "hbo_diploma", "motivation": "Ik wil"}})
"""


@pytest.mark.timeout(900)
def test_candidate_pages_and_refusals(app: App, ui: Callable[..., UI]) -> None:
    app.person("rob", ["candidate"], address=ADDRESS)
    app.person("ria", ["candidate"], address=ADDRESS)
    app.run(START.format())
    settle(app)
    rob = ui("rob")
    rob.visit("/mijn", shot="pages-mijn-case-running")
    rob.page.get_by_role("link", name="Eerste certificering").first.click()
    rob.page.wait_for_selector("text=Hoe het ervoor staat")
    assert "Toelaatbaarheid beoordelen" in rob.page.inner_text("main")
    rob.check("pages-case")
    case_url = rob.page.url
    # Another candidate's case id: refused, nothing shown.
    ria = ui("ria")
    response = ria.visit(case_url.replace(app.url, ""), shot="pages-other-case-refused")
    assert response.status in (403, 404)
    assert "Toelaatbaarheid" not in ria.page.inner_text("main")
    # Recertification without a certificate: not offered, and its address says at once why
    # not and what to do instead, before any question.
    rob.visit("/mijn")
    assert rob.page.get_by_role("link", name="Het Engelstalige certificaat of het boek bestellen").count() == 1
    assert rob.page.get_by_role("link", name="Aanmelden voor hercertificering").count() == 0
    rob.visit("/mijn/recertify")
    rob.page.wait_for_selector("text=Dit is niet mogelijk")
    assert "Vraag eerst de eerste certificering aan." in rob.page.inner_text("main")
    assert rob.page.get_by_role("link", name="Opnieuw beginnen").count() == 0
    rob.check("pages-recertify-refused")
    # The book: how many, check, send.
    rob.visit("/mijn/order", shot="pages-order")
    rob.page.get_by_label(re.compile("Het boek")).check()
    rob.click("Verder")
    rob.fill("Hoeveel boeken?", "twee")
    rob.click("Verder")
    assert "Vul een geheel getal van 1 tot en met 50 in." in rob.page.inner_text("[data-error-summary]")
    rob.check("pages-order-error")
    rob.fill("Hoeveel boeken?", "2")
    rob.click("Verder")
    rob.check("pages-order-check")
    rob.click("Versturen")
    rob.page.wait_for_selector("text=Uw kenmerk")
    rob.check("pages-order-sent")


@pytest.mark.timeout(900)
def test_inbox_filters_bulk_and_stale_page(app: App, ui: Callable[..., UI]) -> None:
    app.person("olaf", ["office"], is_staff=True)
    app.person("oona", ["office"], is_staff=True)
    olaf, oona = ui("olaf"), ui("oona")
    olaf.visit("/inbox?candidate=rob", shot="pages-inbox-filtered")
    olaf.fill("Dit filter opslaan als", "Rob")
    olaf.page.get_by_label("Delen met").select_option("office")
    olaf.click("Filter opslaan")
    olaf.page.wait_for_selector("a[aria-current=true]:has-text('Rob')")
    olaf.check("pages-inbox-saved-filter")
    oona.visit("/inbox", shot="pages-inbox-shared-filter")
    assert "gedeeld met Bureau" in oona.page.inner_text(".saved-filters")  # the group in words
    # Both open Rob's task; Olaf completes it, then Oona's page is stale.
    olaf.page.get_by_role("link", name="Rob").click()
    olaf.page.get_by_role("link", name="Toelaatbaarheid beoordelen").first.click()
    olaf.page.wait_for_selector("#task-title")
    task_url = olaf.page.url
    oona.visit(task_url.replace(app.url, ""))
    oona.click("In behandeling nemen")
    oona.page.get_by_role("button", name="Taak afronden").wait_for()
    oona.page.get_by_role("radio", name="Ja").check()
    oona.click("Taak afronden")
    oona.page.wait_for_selector("text=De taak is afgerond.")
    olaf.click("In behandeling nemen")
    olaf.page.wait_for_selector("text=Iemand anders heeft deze taak intussen afgerond")
    olaf.check("pages-inbox-stale")
    # Bulk: select every open task and give them to Oona.
    olaf.visit("/inbox")
    for box in olaf.page.locator("input[name=task_ids]").all():
        box.check()
    olaf.fill("Gebruikersnaam van de nieuwe behandelaar", "oona")
    olaf.click("Geselecteerde toewijzen")
    olaf.page.wait_for_selector("text=De taken zijn toegewezen.")
    olaf.check("pages-inbox-bulk-assigned")
