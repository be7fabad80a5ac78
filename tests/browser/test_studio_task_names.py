"""A task's English name (property ``name_en``, the title English pages show) survives the
studio: a process owner changes another property of that task in the properties panel and
saves the draft; the saved diagram still names all six tasks in English."""

from __future__ import annotations

import re
from typing import Callable

import pytest

from tests.browser.conftest import UI, App
from tests.browser.test_studio import _PROPERTY, _field, _select
from tests.web.test_task_titles import NAMED_IN_ENGLISH

pytestmark = pytest.mark.browser

SAVED = """(async () => {
    const r = await fetch('/studio/recertification_written/workspace.json', { credentials: 'same-origin' });
    const space = await r.json();
    return space.sources[space.bpmn_file];
})()"""
DISCARD = """(async () => {
    const token = document.querySelector('input[name=csrf_token]').value;
    const r = await fetch('/studio/recertification_written/discard',
                          { method: 'POST', headers: { 'X-CSRF-Token': token }, credentials: 'same-origin' });
    return r.status;
})()"""


def test_a_tasks_english_name_survives_an_edit_and_a_save(app: App, ui: Callable[..., UI]) -> None:
    app.person("names_owner", ["process_owner"], is_staff=True)
    owner = ui("names_owner")
    owner.visit("/studio/recertification_written")
    page = owner.page
    page.wait_for_selector("#studio[data-ready='1']", state="attached")
    _select(page, "assess_1")
    assert page.evaluate(_PROPERTY, ["assess_1", "name_en"]) == NAMED_IN_ENGLISH["assess_1"]
    _field(page, "certflow-due").fill("P20D")
    page.wait_for_timeout(400)  # the panel's debounce
    page.get_by_role("button", name="Concept opslaan").click()
    page.wait_for_selector("#studio-status:has-text('Concept opgeslagen.')")
    try:
        saved = page.evaluate(SAVED)
        task = re.search(r'<bpmn:userTask id="assess_1".*?</bpmn:userTask>', saved, re.S)
        assert task and "P20D" in task.group(0)  # the edit was saved...
        named = dict(re.findall(r'<bpmn:userTask id="(\w+)"[^>]*>(?:(?!</bpmn:userTask>).)*?'
                                r'name="name_en" value="([^"]*)"', saved, re.S))
        assert named == NAMED_IN_ENGLISH  # ...and every English name with it
    finally:
        assert page.evaluate(DISCARD) in (200, 303)  # the shared app's other tests see no draft
