"""Two process owners in two browsers on one diagram draft, in Chromium: the second save made
from the same revision is refused with who saved it and when; the refused owner downloads
their own version, reloads the saved draft, or saves theirs over it on purpose; nothing is
lost silently. Deploy first shows what it changes against the newest version and deploys
only when confirmed. On an app of its own, as it deploys the certification diagram."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from tests.browser.conftest import UI, App, running_app
from tests.browser.test_studio import LATEST, _field, _select

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with running_app(tmp_path_factory) as the_app:
        yield the_app

SAVED_DUE = """(async () => {
    const r = await fetch('/studio/certification/workspace.json', { credentials: 'same-origin' });
    const space = await r.json();
    const m = space.sources[space.bpmn_file].match(/name="due" value="(?:&quot;|&#34;)(P\\d+D)/);
    return [ space.revision, m && m[1] ];
})()"""


def _open(owner: UI) -> None:
    owner.visit("/studio/certification")
    owner.page.wait_for_selector("#studio[data-ready='1']", state="attached")


def _set_due(owner: UI, value: str) -> None:
    _select(owner.page, "check_eligibility")
    _field(owner.page, "certflow-due").fill(value)
    owner.page.wait_for_timeout(400)  # the panel's debounce


def test_two_owners_on_one_draft_lose_nothing(app: App, ui: Callable[..., UI], tmp_path: Path) -> None:
    app.person("draft_anna", ["process_owner"], is_staff=True)
    app.person("draft_bert", ["process_owner"], is_staff=True)
    latest = app.run(LATEST)
    anna, bert = ui("draft_anna"), ui("draft_bert")
    _open(anna)
    _open(bert)

    _set_due(anna, "P7D")
    anna.page.get_by_role("button", name="Concept opslaan").click()
    anna.page.wait_for_selector("#studio-status:has-text('Concept opgeslagen.')")

    _set_due(bert, "P9D")
    bert.page.get_by_role("button", name="Concept opslaan").click()
    conflict = bert.page.locator("#studio-conflict")
    conflict.wait_for()
    assert "draft_anna heeft dit concept op" in conflict.inner_text()
    bert.check("studio-draft-conflict")
    with bert.page.expect_download() as download:
        bert.page.get_by_role("link", name="Mijn versie downloaden (.bpmn)").click()
    kept = tmp_path / "mine.bpmn"
    download.value.save_as(kept)
    assert "P9D" in kept.read_text(encoding="utf-8")  # his version, kept for him
    assert bert.page.evaluate(SAVED_DUE) == [1, "P7D"]  # hers, untouched

    bert.page.get_by_role("button", name="Het opgeslagen concept opnieuw laden").click()
    bert.page.wait_for_selector("#studio-status:has-text('Het opgeslagen concept is geladen')")
    _select(bert.page, "check_eligibility")
    assert _field(bert.page, "certflow-due").input_value() == "P7D"
    assert "door draft_anna" in bert.page.locator("#studio-state").inner_text()
    # Only the download of his own version is left to do.
    assert bert.page.get_by_role("button", name="Mijn versie in plaats van de hunne opslaan").is_hidden()
    assert bert.page.get_by_role("link", name="Mijn versie downloaden (.bpmn)").is_visible()
    bert.check("studio-draft-reloaded")

    # Now bert saves on top of what he has seen; anna's editor (revision 1) is the stale one,
    # and she chooses to save hers over his.
    _set_due(bert, "P10D")
    bert.page.get_by_role("button", name="Concept opslaan").click()
    bert.page.wait_for_selector("#studio-status:has-text('Concept opgeslagen.')")
    _set_due(anna, "P8D")
    anna.page.get_by_role("button", name="Concept opslaan").click()
    anna.page.locator("#studio-conflict").wait_for()
    assert "draft_bert heeft dit concept op" in anna.page.locator("#studio-conflict").inner_text()
    assert anna.page.evaluate(SAVED_DUE) == [2, "P10D"]
    anna.page.get_by_role("button", name="Mijn versie in plaats van de hunne opslaan").click()
    anna.page.wait_for_selector("#studio-status:has-text('Concept opgeslagen.')")
    assert anna.page.locator("#studio-conflict").is_hidden()
    assert anna.page.evaluate(SAVED_DUE) == [3, "P8D"]

    # Deploy: the changes against the newest version first; cancel deploys nothing.
    anna.page.get_by_role("button", name="Uitrollen als nieuwe versie").click()
    dialog = anna.page.locator("#studio-confirm")
    dialog.wait_for()
    row = dialog.locator("tr", has=anna.page.locator("code", has_text="check_eligibility"))
    assert "P8D" in row.inner_text()
    assert f"Ten opzichte van versie {latest}, de nieuwste uitgerolde" in dialog.inner_text()
    anna.check("studio-deploy-preview")
    dialog.get_by_role("button", name="Annuleren").click()
    assert dialog.is_hidden() and app.run(LATEST) == latest
    anna.page.get_by_role("button", name="Uitrollen als nieuwe versie").click()
    dialog.get_by_role("button", name="Uitrollen", exact=True).click()
    anna.page.wait_for_selector(f"#studio-status:has-text('versie {latest + 1}')")
    assert app.run(LATEST) == latest + 1


LANE_OF = """(id) => {
    const registry = window.certflowStudio.modeler.get('elementRegistry');
    const shape = registry.get(id);
    const lane = registry.filter((e) => e.type === 'bpmn:Lane')
        .find((l) => (l.businessObject.flowNodeRef || []).includes(shape.businessObject));
    const middle = shape.y + shape.height / 2;
    return [ lane && lane.id, lane && lane.y <= middle && middle <= lane.y + lane.height ];
}"""


def test_a_tasks_lane_is_chosen_in_the_properties_panel(app: App, ui: Callable[..., UI]) -> None:
    app.person("lane_owner", ["process_owner"], is_staff=True)
    owner = ui("lane_owner")
    _open(owner)
    page = owner.page
    _select(page, "check_eligibility")
    lane = page.locator('[data-entry-id="certflow-lane"] select')
    assert lane.input_value() == "lane_office"
    options = lane.locator("option").all_inner_texts()
    by_height = page.evaluate("""() => window.certflowStudio.modeler.get('elementRegistry')
        .filter((e) => e.type === 'bpmn:Lane').sort((a, b) => a.y - b.y).map((l) => l.businessObject.name)""")
    assert options == by_height  # the pool's lanes, top to bottom
    assert sorted(options) == ["candidate", "certifier", "committee", "coordinator", "mentor", "office"]
    lane.select_option(label="coordinator")
    page.wait_for_function("() => window.certflowStudio.modeler.get('commandStack').canUndo()")
    assert page.evaluate(LANE_OF, "check_eligibility") == ["lane_coordinator", True]
    _select(page, "check_eligibility")
    assert page.locator('[data-entry-id="certflow-lane"] select').input_value() == "lane_coordinator"
    owner.check("studio-lane-moved")
    # One undo puts it back where it was.
    page.evaluate("() => window.certflowStudio.modeler.get('commandStack').undo()")
    assert page.evaluate(LANE_OF, "check_eligibility") == ["lane_office", True]
