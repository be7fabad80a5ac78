"""What the studio's browser tests do alike: open a process's diagram in the modeler, and
select an element as clicking it does."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import UI


def open_studio(owner: UI, process_id: str) -> Any:
    """The studio on ``process_id``'s diagram, its modeler ready and no script error on the way;
    returns the page."""
    errors: list[str] = []
    owner.page.on("pageerror", lambda error: errors.append(str(error)))
    owner.visit(f"/studio/{process_id}")
    owner.page.wait_for_selector("#studio[data-ready='1']", state="attached")
    assert not errors, errors
    return owner.page


def select(page: Any, element: str) -> None:
    """Select the element (nothing for ""), in view, and wait for the panel to show it."""
    page.evaluate("""(id) => {
        const modeler = window.certflowStudio.modeler;
        const canvas = modeler.get('canvas');
        const shape = id && modeler.get('elementRegistry').get(id);
        canvas.zoom(1);
        if (shape) canvas.scrollToElement(shape, { top: 150, bottom: 150, left: 350, right: 350 });
        modeler.get('selection').select(shape || []);
    }""", element)
    page.wait_for_function("""(id) => {
        const input = document.querySelector('#studio-panel [data-entry-id="id"] input');
        return !id || (input && input.value === id);
    }""", arg=element)
