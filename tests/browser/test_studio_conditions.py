"""A gateway's routing in the studio, in Chromium, as a process owner changes it: on the
register fee's "what does the office do?" gateway they read a flow's condition in the
properties panel and change it, are warned when a flow is left with no condition, make another
flow the default (its condition goes, its slash appears, and one undo takes both back) and save;
the saved draft holds the new condition and the gateway's default. A condition that is not
Python is flagged as it is typed, named on its flow by the check, and refused at deploy.
Each test discards its draft: the app is shared."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from lxml import etree

from tests.browser.conftest import UI, App
from tests.browser.studio_support import open_studio, select

pytestmark = pytest.mark.browser

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
SAVED = """(async () => {
    const r = await fetch('/studio/register_fee/workspace.json', { credentials: 'same-origin' });
    const space = await r.json();
    return [ space.is_draft, space.sources[space.bpmn_file] ];
})()"""
DISCARD = """(async () => {
    const token = document.querySelector('input[name=csrf_token]').value;
    const r = await fetch('/studio/register_fee/discard',
                          { method: 'POST', headers: { 'X-CSRF-Token': token }, credentials: 'same-origin' });
    return r.status;
})()"""
VERSIONS = """
import json
from certflow.bootstrap import engine
print(json.dumps(sorted(d["version"] for d in engine().definitions() if d["process_id"] == "register_fee")))
"""
CONDITION = '[data-entry-id="certflow-condition"]'
DEFAULT = '[data-entry-id="certflow-default-flow"]'


def _open(owner: UI) -> Any:
    page = open_studio(owner, "register_fee")
    page.set_viewport_size({"width": 1280, "height": 1100})  # the panel's groups in the screenshots
    return page


def _select(page: Any, element: str) -> None:
    """Select the flow and wait for the panel's routing group."""
    select(page, element)
    page.wait_for_selector('#studio-panel [data-group-id="group-certflow-routing"]')


def _condition(page: Any) -> Any:
    return page.locator(f"#studio-panel {CONDITION} input")


def _type(page: Any, flow: str, text: str) -> None:
    """Type a condition, as the owner does, and wait for the panel to put it in the diagram
    (after its debounce: it then asks the server whether it would run)."""
    _condition(page).fill(text)
    page.wait_for_function("""([id, text]) => {
        const bo = window.certflowStudio.modeler.get('elementRegistry').get(id).businessObject;
        return (bo.conditionExpression ? bo.conditionExpression.body : '') === text;
    }""", arg=[flow, text])


def _default_marker(page: Any, flow: str) -> bool:
    """Whether the flow is drawn with the default flow's slash (a flow out of a gateway has no
    other marker at its start)."""
    return bool(page.evaluate("""(id) => {
        const gfx = window.certflowStudio.modeler.get('elementRegistry').getGraphics(id);
        return gfx.querySelector('.djs-visual > path').style.markerStart.startsWith('url(');
    }""", flow))


def _flows(xml: str) -> tuple[dict[str, Any], str | None]:
    root = etree.fromstring(xml.encode())
    gateway = root.find(f".//{BPMN}exclusiveGateway[@id='gw_unpaid_action']")
    assert gateway is not None
    flows = {}
    for flow in root.iter(f"{BPMN}sequenceFlow"):
        if flow.get("sourceRef") == "gw_unpaid_action":
            flows[flow.get("id")] = flow.find(f"{BPMN}conditionExpression")
    return flows, gateway.get("default")


def test_a_process_owner_changes_a_gateways_routing(app: App, ui: Callable[..., UI]) -> None:
    app.person("routing_owner", ["process_owner"], is_staff=True)
    owner = ui("routing_owner")
    page = _open(owner)
    try:
        _select(page, "flow_action_suspend")
        assert page.locator("#studio-panel .bio-properties-panel-group-header-title").all_text_contents()[:2] == [
            "Algemeen", "Voorwaarde"]
        assert _condition(page).input_value() == "action == 'suspend'"
        assert page.locator(f"#studio-panel {DEFAULT} input").is_checked() is False
        assert "deze gateway heeft er geen" in page.locator(f"#studio-panel {DEFAULT}").inner_text()
        _type(page, "flow_action_suspend", "action == 'suspend' and reason != ''")
        page.wait_for_timeout(300)  # the server's answer
        assert page.locator(f"#studio-panel {CONDITION} .bio-properties-panel-error").count() == 0

        # A flow left without a condition (and not the default) is warned about.
        _select(page, "flow_action_write_off")
        _type(page, "flow_action_write_off", "")
        page.locator(f"#studio-panel {CONDITION}:has-text('Geef een voorwaarde, of maak dit de standaardstroom')") \
            .wait_for()
        owner.check("studio-condition-missing")
        page.evaluate("() => window.certflowStudio.modeler.get('commandStack').undo()")
        _select(page, "flow_action_write_off")
        assert _condition(page).input_value() == "action == 'write_off'"

        # Another flow becomes the default: its condition goes, the slash appears; one undo.
        _select(page, "flow_action_reminded")
        assert not _default_marker(page, "flow_action_reminded")
        page.locator(f"#studio-panel {DEFAULT} input").check()
        page.wait_for_selector(f"#studio-panel {CONDITION}", state="detached")
        assert "een standaardstroom heeft zelf geen voorwaarde" in page.locator(f"#studio-panel {DEFAULT}").inner_text()
        assert _default_marker(page, "flow_action_reminded")
        page.evaluate("() => window.certflowStudio.modeler.get('commandStack').undo()")
        _select(page, "flow_action_reminded")
        assert _condition(page).input_value() == "action == 'reminded_by_phone'"
        assert not _default_marker(page, "flow_action_reminded")
        page.evaluate("() => window.certflowStudio.modeler.get('commandStack').redo()")
        _select(page, "flow_action_reminded")
        assert page.locator(f"#studio-panel {DEFAULT} input").is_checked()
        owner.check("studio-condition-default")

        _select(page, "flow_action_suspend")
        assert "De standaardstroom is nu ‘Telefonisch herinnerd: opnieuw wachten’:" in \
            page.locator(f"#studio-panel {DEFAULT}").inner_text()
        owner.check("studio-condition")

        page.get_by_role("button", name="Concept opslaan").click()
        page.wait_for_selector("#studio-status:has-text('Concept opgeslagen.')")
        is_draft, xml = page.evaluate(SAVED)
        assert is_draft
        flows, default = _flows(xml)
        assert default == "flow_action_reminded"
        assert flows["flow_action_reminded"] is None
        suspend = flows["flow_action_suspend"]
        assert suspend.text == "action == 'suspend' and reason != ''"
        assert suspend.get(XSI_TYPE) == "bpmn:tFormalExpression"
        assert flows["flow_action_write_off"].text == "action == 'write_off'"
    finally:
        assert page.evaluate(DISCARD) in (200, 303)


def test_a_condition_that_is_not_python_is_flagged_and_not_deployed(app: App, ui: Callable[..., UI]) -> None:
    app.person("routing_typo", ["process_owner"], is_staff=True)
    versions = app.run(VERSIONS)
    owner = ui("routing_typo")
    page = _open(owner)
    try:
        _select(page, "flow_action_suspend")
        _type(page, "flow_action_suspend", "action = 'suspend'")
        error = page.locator(f"#studio-panel {CONDITION} .bio-properties-panel-error")
        error.wait_for()
        assert error.inner_text() == "Geen geldige Python-expressie (invalid syntax)."
        _type(page, "flow_action_suspend", "action.__class__ == 'suspend'")
        page.locator(f"#studio-panel {CONDITION} .bio-properties-panel-error:has-text("
                     "'Niet toegestaan in een voorwaarde: attribuut')").wait_for()
        _type(page, "flow_action_suspend", "action = 'suspend'")
        error.wait_for()
        owner.check("studio-condition-error")

        page.get_by_role("button", name="Controleren").click()
        badge = page.locator('.studio-error[data-element="flow_action_suspend"]')
        badge.wait_for()
        assert badge.inner_text() == ("voorwaarde van volgordestroom 'Schorsen': geen geldige Python-expressie "
                                      "(invalid syntax)")
        assert "register_fee.bpmn [flow_action_suspend]" in page.locator("#studio-problem-list").inner_text()

        page.get_by_role("button", name="Uitrollen als nieuwe versie").click()
        page.locator("#studio-confirm").get_by_role("button", name="Uitrollen", exact=True).click()
        page.wait_for_selector("#studio-status:has-text('Uitrollen geweigerd')")
        assert badge.count() == 1
        owner.check("studio-condition-refused")
        assert app.run(VERSIONS) == versions
    finally:
        assert page.evaluate(DISCARD) in (200, 303)
