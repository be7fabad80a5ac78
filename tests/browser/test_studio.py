"""The studio in Chromium, as a process owner uses it: open the certification diagram, change
the eligibility task's due date in the properties panel, break a service task's parameter and
see the error on that element, fix it, deploy version 2. A case started before the deploy
stays on version 1; one started after runs on version 2 (asked of the engine facade)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from tests.browser.conftest import UI, App
from tests.browser.studio_support import select

pytestmark = pytest.mark.browser

START = """
import json
from certflow.bootstrap import engine
from certflow.engine.facade import Actor
view = engine().start(Actor.system(), "certification", {key!r},
                      {{"candidate": "studio_cas", "eligibility_route": "hbo_diploma", "motivation": "x"}})
print(json.dumps(view.id))
"""
VERSION = """
import json
from certflow.bootstrap import engine
from certflow.engine.facade import Actor
print(json.dumps(engine().instance(Actor.system(), {instance!r}).version))
"""
LATEST = """
import json
from certflow.bootstrap import engine
print(json.dumps(max(d["version"] for d in engine().definitions() if d["process_id"] == "certification")))
"""


def _select(page: Any, element: str) -> None:
    """Select the element and wait for certflow's group in the panel."""
    select(page, element)
    page.wait_for_selector('#studio-panel [data-group-id="group-certflow"]')


# An element's spiffworkflow property as the diagram now holds it (null when it has none).
_PROPERTY = """([id, name]) => {
    const bo = window.certflowStudio.modeler.get('elementRegistry').get(id).businessObject;
    const ext = bo.extensionElements;
    const props = ext && ext.values.find((v) => v.$type === 'spiffworkflow:Properties');
    const found = props && (props.property || []).find((p) => p.name === name);
    return found ? found.value : null;
}"""


def _field(page: Any, entry: str) -> Any:
    return page.locator(f'[data-entry-id="{entry}"] input')


def test_process_owner_changes_checks_and_deploys(app: App, ui: Callable[..., UI]) -> None:
    app.person("studio_owner", ["process_owner"], is_staff=True)
    app.person("studio_cas", ["candidate"])
    before = app.run(START.format(key="STUDIO-v1"))
    latest = app.run(LATEST)

    owner = ui("studio_owner")
    errors: list[str] = []
    owner.page.on("pageerror", lambda error: errors.append(str(error)))
    owner.page.on("console", lambda msg: errors.append(msg.text)
                  if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    owner.page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                  if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    owner.visit("/studio", shot="studio-processes")
    owner.page.get_by_role("link", name="Eerste certificering / First certification").click()
    try:
        owner.page.wait_for_selector("#studio[data-ready='1']", state="attached")
    finally:
        assert not errors, errors
    owner.check("studio-editor")

    page = owner.page
    _select(page, "check_eligibility")
    due = _field(page, "certflow-due")
    assert due.input_value() == "P5D"
    due.fill("P7D")
    page.wait_for_selector('[data-entry-id="certflow-due"] :text("7 dagen")')
    assert page.locator('[data-entry-id="certflow-lane"] select').input_value() == "lane_office"
    owner.check("studio-due-changed")

    _select(page, "send_confirmation")
    template = _field(page, "certflow-param-template")
    assert template.input_value() == "'certification/application_received'"
    # A mail does not hold the case up; the owner can make the case wait for it, and undo that.
    wait = page.locator('[data-entry-id="certflow-wait"] select')
    assert wait.input_value() == "" and "Nee, de zaak gaat verder" in wait.inner_text()
    wait.select_option("true")
    assert page.evaluate(_PROPERTY, ["send_confirmation", "wait"]) == "true"
    wait.select_option("")
    assert page.evaluate(_PROPERTY, ["send_confirmation", "wait"]) is None
    template.fill("'certification/no_such_mail'")
    page.wait_for_timeout(400)  # the panel's debounce
    page.get_by_role("button", name="Controleren").click()
    badge = page.locator('.studio-error[data-element="send_confirmation"]')
    badge.wait_for()
    assert "no_such_mail" in badge.inner_text()
    assert page.locator('.djs-element.studio-has-error[data-element-id="send_confirmation"]').count() == 1
    owner.check("studio-check-error")

    _select(page, "send_confirmation")
    _field(page, "certflow-param-template").fill("'certification/application_received'")
    page.wait_for_timeout(400)
    page.get_by_role("button", name="Controleren").click()
    page.wait_for_selector("#studio-status:has-text('Geen problemen')")
    assert badge.count() == 0

    _select(page, "timer_payment_deadline")
    timer = _field(page, "certflow-timer")
    assert timer.input_value() == '=deadline("P45D", True)'  # the candidate's term, on working days
    assert "45 dagen, of tot en met de eerstvolgende werkdag" in \
        page.locator('[data-entry-id="certflow-timer"]').inner_text()
    _select(page, "lane_office")
    assert page.locator('[data-entry-id="certflow-lane-group"] select').input_value() == "office"
    _select(page, "wait_payment")
    assert _field(page, "certflow-correlation").input_value() == "invoice_number"

    page.get_by_role("button", name="Uitrollen als nieuwe versie").click()
    page.locator("#studio-confirm").get_by_role("button", name="Uitrollen", exact=True).click()
    page.wait_for_selector(f"#studio-status:has-text('versie {latest + 1}')")
    owner.check("studio-deployed")

    after = app.run(START.format(key="STUDIO-v2"))
    assert app.run(VERSION.format(instance=before)) == latest
    assert app.run(VERSION.format(instance=after)) == latest + 1

    owner.visit("/studio/certification/versions", shot="studio-versions")
    assert "P7D" in page.content()
