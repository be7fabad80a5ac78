"""The studio's modeler speaks the process owner's language: bpmn-js's palette, context pad and
replace menu, the properties panel's groups, labels and checks, and certflow's own entries are
Dutch on a Dutch page and English on an English one. On the Dutch page every text the modeler
asked to be translated while the common elements were selected had Dutch (the page notes those
that had none: window.certflowStudio.untranslated). Nothing is saved: the app is shared."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from tests.browser.conftest import ARTIFACTS, UI, App
from tests.browser.studio_support import open_studio, select

pytestmark = pytest.mark.browser

# The common elements of the certification diagram, with the type the panel's header shows on
# a Dutch page ("" is the diagram itself: nothing selected).
ELEMENTS = {
    "": "Samenwerking",
    "participant_certification": "Pool/deelnemer",
    "lane_office": "Baan",
    "start": "Startgebeurtenis",
    "check_eligibility": "Gebruikerstaak",
    "send_confirmation": "Servicetaak",
    "timer_payment_deadline": "Randgebeurtenis (timer)",
    "timer_payment_reminder": "Randgebeurtenis (timer, niet-onderbrekend)",
    "gw_eligible": "Exclusieve gateway",
    "flow_eligible_yes": "Volgordestroom",
    "wait_payment": "Ontvangsttaak",
}


def _texts(page: Any, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_text_contents()]


def _titles(page: Any, selector: str, attribute: str = "title") -> list[str]:
    return page.eval_on_selector_all(selector, "(els, name) => els.map((e) => e.getAttribute(name))", attribute)


def _palette(page: Any) -> list[str]:
    """The palette's entries as their tooltip and screen reader say them."""
    return _titles(page, ".djs-palette .entry[aria-label]", "aria-label")


def _panel(page: Any) -> dict[str, Any]:
    return {"type": page.locator("#studio-panel .bio-properties-panel-header-type").text_content().strip(),
            "groups": _texts(page, "#studio-panel .bio-properties-panel-group-header-title"),
            "labels": _texts(page, "#studio-panel .bio-properties-panel-label")}


def _replace_menu(page: Any) -> list[str]:
    """Open the selected element's "change element" menu; its entries' labels (then close it)."""
    page.locator('.djs-context-pad .entry[data-action="replace"]').click()
    page.wait_for_selector(".djs-popup")
    labels = _texts(page, ".djs-popup .djs-popup-entry-name") + _titles(page, ".djs-popup [title]")
    page.keyboard.press("Escape")
    page.wait_for_selector(".djs-popup", state="detached")
    return labels


def test_the_modeler_speaks_dutch_to_a_dutch_process_owner(app: App, ui: Callable[..., UI]) -> None:
    app.person("studio_nl", ["process_owner"], is_staff=True)
    owner = ui("studio_nl")
    page = open_studio(owner, "certification")

    palette = _palette(page)
    assert {"Startgebeurtenis maken", "Taak maken", "Gateway maken", "Eindgebeurtenis maken",
            "Lasso: elementen selecteren"} <= set(palette), palette
    assert "Create start event" not in palette

    select(page, "check_eligibility")
    panel = _panel(page)
    assert panel["type"] == "Gebruikerstaak"
    assert panel["groups"][:3] == ["Algemeen", "certflow", "Documentatie"], panel
    assert {"Naam", "ID", "Documentatie van het element", "Formulier", "Termijn", "Groep (baan)"} \
        <= set(panel["labels"]), panel
    assert set(_titles(page, "#studio-panel .bio-properties-panel-group-header-buttons [title]")) == {
        "In deze sectie is iets ingevuld", "Sectie in- of uitklappen"}
    pad = _titles(page, ".djs-context-pad .entry[title]")
    assert {"Eindgebeurtenis erna toevoegen", "Taak erna toevoegen", "Element wijzigen", "Verwijderen"} \
        <= set(pad), pad
    menu = _replace_menu(page)
    assert {"Servicetaak", "Ontvangsttaak", "Scripttaak", "Parallel meervoudig"} & set(menu), menu
    assert "Service task" not in menu

    # The panel's own check, in Dutch: an ID another element has ("Algemeen" opened first; it
    # stays open for the elements below).
    page.locator('#studio-panel [data-group-id="group-general"] .bio-properties-panel-group-header').click()
    page.locator('#studio-panel [data-entry-id="id"] input').fill("start")
    page.locator("#studio-panel .bio-properties-panel-error:has-text('moet uniek zijn')").wait_for()

    select(page, "participant_certification")
    assert {"Naam van de deelnemer", "Proces-ID", "Procesnaam", "Uitvoerbaar"} <= set(_panel(page)["labels"])

    page.set_viewport_size({"width": 1280, "height": 1600})  # the whole panel in the screenshots
    for element, kind in ELEMENTS.items():
        select(page, element)
        panel = _panel(page)
        assert panel["type"] == kind, (element, panel)
        if page.locator('.djs-context-pad .entry[data-action="replace"]').count():
            _replace_menu(page)
        page.screenshot(path=str(ARTIFACTS / f"studio-nl-{element or 'diagram'}.png"))

    page.evaluate("""() => {
        const modeler = window.certflowStudio.modeler;
        const registry = modeler.get('elementRegistry');
        modeler.get('selection').select([ registry.get('start'), registry.get('check_eligibility') ]);
    }""")
    page.locator("#studio-panel :text('Er zijn meerdere elementen geselecteerd')").wait_for()
    assert "Elementen uitlijnen" in _titles(page, ".djs-context-pad .entry[title]")

    select(page, "timer_payment_deadline")
    assert "45 dagen, of tot en met de eerstvolgende werkdag" in page.locator("#studio-panel").inner_text()
    untranslated = page.evaluate("() => [ ...window.certflowStudio.untranslated ]")
    assert untranslated == [], untranslated
    # (and it would have said so: a text with no Dutch is noted, and stays English)
    assert page.evaluate("""() => {
        const translate = window.certflowStudio.modeler.get('translate');
        return [ translate('Open {element}', { element: 'Dossier' }), translate('No such text {n}', { n: 0 }),
                 [ ...window.certflowStudio.untranslated ] ];
    }""") == ["Dossier openen", "No such text 0", ["No such text {n}"]]
    owner.check("studio-nl-timer")


def test_the_same_modeler_speaks_english_to_an_english_process_owner(app: App, ui: Callable[..., UI]) -> None:
    app.person("studio_en", ["process_owner"], is_staff=True, language="en")
    owner = ui("studio_en")
    page = open_studio(owner, "certification")

    palette = _palette(page)
    assert {"Create start event", "Create task", "Create gateway"} <= set(palette), palette

    select(page, "check_eligibility")
    panel = _panel(page)
    assert panel["type"] == "User Task"
    assert panel["groups"][:3] == ["General", "certflow", "Documentation"], panel
    assert {"Name", "ID", "Element documentation", "Form", "Due", "Group (lane)"} <= set(panel["labels"]), panel
    assert "Append end event" in _titles(page, ".djs-context-pad .entry[title]")
    assert "Service task" in _replace_menu(page)

    select(page, "timer_payment_deadline")
    assert _panel(page)["type"] == "Timer Boundary Event"
    assert "45 days, or through the next working day" in page.locator("#studio-panel").inner_text()
    owner.check("studio-en-timer")
