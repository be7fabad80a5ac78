"""The monitor in Chromium, as the office uses it: filter the cases, open one, see its token on
the right element of the bpmn-js diagram (the marker class on that element's SVG group), then
cancel it with a reason after a first try without one. Each page is checked with axe-core
and screenshotted."""

from __future__ import annotations

import time
from typing import Callable

import pytest

from tests.browser.conftest import UI, App

pytestmark = pytest.mark.browser

START = """
import json
from certflow.bootstrap import engine
from certflow.engine.facade import Actor
from tests.support import create_user
from certflow.store.db import session_scope
with session_scope() as s:
    create_user(s, "monica", "Monica de Mon", ["candidate"], address={"street": "Oudegracht 1",
                "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"})
ids = [engine().start(Actor("monica", ("candidate",)), "certification", key,
                      {"candidate": "monica", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"}).id
       for key in ("MON-1",)]
print(json.dumps(ids))
"""


OPEN_STEPS = """
import json
from sqlalchemy import select
from certflow.store.db import session_scope
from certflow.store.models import HumanTask
with session_scope() as s:
    print(json.dumps(s.scalars(select(HumanTask.element_id).where(HumanTask.instance_id == {id!r})).all()))
"""


def test_office_filters_opens_a_case_sees_its_token_and_cancels_it(worker: App, ui: Callable[..., UI]) -> None:
    app = worker  # the confirmation mail goes out, then the office's eligibility check opens
    app.person("molly", ["office"], is_staff=True)
    [instance_id] = app.run(START)
    deadline = time.monotonic() + 60
    while app.run(OPEN_STEPS.format(id=instance_id)) != ["check_eligibility"]:
        assert time.monotonic() < deadline, app.logs()
        time.sleep(0.5)
    office = ui("molly")
    office.visit("/monitor", shot="monitor-list")
    office.page.get_by_role("link", name="Monitor").first.wait_for()
    office.page.get_by_label("Zaaknummer of het begin ervan", exact=True).fill("MON-")
    office.page.get_by_label("Status", exact=True).select_option("running")
    office.click("Zaken tonen")
    office.page.wait_for_url("**/monitor?*business_key=MON-*")
    rows = office.page.locator("#instances tbody tr")
    assert rows.count() == 1 and "Monica de Mon" in rows.first.inner_text()
    assert "Toelaatbaarheid beoordelen" in rows.first.inner_text()
    office.check("monitor-list-filtered")

    office.page.get_by_role("link", name="MON-1").click()
    office.page.wait_for_url(f"**/monitor/instances/{instance_id}")
    office.page.locator("#diagram[data-ready='1']").wait_for()
    token = office.page.locator('#diagram g.djs-element[data-element-id="check_eligibility"]')
    assert "cf-active" in (token.get_attribute("class") or "")
    start = office.page.locator('#diagram g.djs-element[data-element-id="start"]')
    assert "cf-done" in (start.get_attribute("class") or "")
    assert office.page.locator('#diagram .cf-active').count() >= 1
    assert office.page.locator(".djs-overlay .cf-active-badge").count() >= 1
    assert "Zaak gestart" in office.page.locator("#timeline").inner_text()
    office.check("monitor-instance")

    office.page.get_by_role("button", name="Zaak annuleren").click()
    summary = office.page.locator("[data-error-summary]")
    summary.wait_for()
    assert "Zeg waarom de zaak wordt geannuleerd." in summary.inner_text()
    office.check("monitor-cancel-errors")
    office.page.get_by_label("Reden", exact=True).fill("Aanvraag ingetrokken door de kandidaat")
    office.page.get_by_label("Ik begrijp dat de zaak definitief stopt en dat de open taken verdwijnen").check()
    office.page.get_by_role("button", name="Zaak annuleren").click()
    office.page.get_by_text("De zaak is geannuleerd.").wait_for()
    assert "Geannuleerd" in office.page.locator(".status-tags").inner_text()
    assert "Aanvraag ingetrokken door de kandidaat" in office.page.locator("#timeline").inner_text()
    office.page.locator("#diagram[data-ready='1']").wait_for()
    office.check("monitor-cancelled")


INCIDENT = """
import json, time
from sqlalchemy import select
from certflow.bootstrap import engine
from certflow.engine.facade import Actor
from certflow.store.db import session_scope
from certflow.store.models import HumanTask, Instance
from tests.support import create_user
with session_scope() as s:
    create_user(s, "nora", "Nora Zonder Adres", ["candidate"])
iid = engine().start(Actor("nora", ("candidate",)), "certification", "NORA-1",
                     {"candidate": "nora", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"}).id
office = Actor("office-bot", ("office",), True)
for _ in range(120):
    with session_scope() as s:
        task = s.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid))
    if task:
        break
    time.sleep(0.5)
engine().complete(office, task, {"eligible": True, "remarks": ""})
for _ in range(120):
    with session_scope() as s:
        if s.scalar(select(Instance.has_incident).where(Instance.id == iid)):
            break
    time.sleep(0.5)
print(json.dumps(iid))
"""

ADDRESS = """
from certflow.clock import CLOCK
from certflow.services import accounts
from certflow.store.db import session_scope
with session_scope() as s:
    accounts.update(s, "nora", {"address": {"street": "Oudegracht 1", "postal_code": "3511 AA",
                                            "city": "Utrecht", "country": "NL"}})
"""


def test_office_finds_an_incident_fixes_the_cause_and_retries(worker: App, ui: Callable[..., UI]) -> None:
    app = worker
    app.person("mona", ["office"], is_staff=True)
    instance_id = app.run(INCIDENT)
    office = ui("mona")
    office.visit("/monitor?has_incident=true")
    row = office.page.locator("#instances tbody tr", has_text="NORA-1")
    assert "Storing" in row.inner_text()
    row.get_by_role("link", name="NORA-1").click()
    office.page.locator("#diagram[data-ready='1']").wait_for()
    invoice = office.page.locator('#diagram g.djs-element[data-element-id="create_invoice"]')
    assert "cf-incident" in (invoice.get_attribute("class") or "")
    incidents = office.page.locator("#incidents").inner_text()
    assert "Factuur maken" in incidents and "complete the account before invoicing" in incidents
    office.check("monitor-incident")

    app.run(ADDRESS)  # the cause: the office completes her address (Personen)
    office.page.get_by_role("button", name="Opnieuw proberen").click()
    office.page.get_by_text("De stap wordt opnieuw geprobeerd.").wait_for()
    deadline = time.monotonic() + 60
    while "cf-active" not in (office.page.locator(
            '#diagram g.djs-element[data-element-id="wait_payment"]').get_attribute("class") or ""):
        assert time.monotonic() < deadline, app.logs()
        time.sleep(1)
        office.visit(f"/monitor/instances/{instance_id}")
        office.page.locator("#diagram[data-ready='1']").wait_for()
    assert "Opnieuw geprobeerd" in office.page.locator("#incidents").inner_text()
    assert "Storing: geen" in office.page.locator(".legend").inner_text()
    office.check("monitor-incident-retried")
