"""The escalation inbox in Chromium, as a coordinator uses it: an office task whose due date
passed is escalated by the real sweep (reminder, then escalation to the coordinators); the
coordinator sees it with why and since when, is told what is missing when extending without a
reason, and reassigns it in one step. The office manager's page shows overdue work. Each page
is checked with axe-core and screenshotted."""

from __future__ import annotations

from typing import Callable

import pytest

from tests.browser.conftest import UI, App

pytestmark = pytest.mark.browser

ESCALATE = """
import json
from datetime import timedelta
from sqlalchemy import update
from certflow.bootstrap import engine
from certflow.engine.facade import Actor
from certflow.store.db import session_scope
from certflow.store.models import HumanTask
from tests.support import Harness
e = engine()
instance = e.start(Actor("esc_cas", ("candidate",)), "certification", "APP-esc",
                   {"candidate": "esc_cas", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
Harness(e).run_jobs()
[task] = [t for t in e.instance(Actor.system(), instance.id).open_tasks
          if t.element_id == "check_eligibility"]
# Its due date passed an hour ago (the shared app's clock stays put for the other tests);
# the sweep then applies what the policy says: the reminder, then the escalation.
past = e.now() - timedelta(hours=1)
with session_scope() as s:
    s.execute(update(HumanTask).where(HumanTask.id == task.id).values(
        due_at=past, next_escalation_at=past - timedelta(days=3), escalation_level=0))
e.sweep_escalations()
print(json.dumps(task.id))
"""


def test_the_coordinator_works_an_escalation(app: App, ui: Callable[..., UI]) -> None:
    app.person("esc_cas", ["candidate"], address={"street": "Oudegracht 1", "postal_code": "3511 AA",
                                                  "city": "Utrecht", "country": "NL"})
    app.person("esc_cor", ["coordinator"], is_staff=True)
    app.person("esc_mia", ["office_manager"], is_staff=True)
    app.person("esc_olly", ["office"], is_staff=True)
    task_id = app.run(ESCALATE)
    cor = ui("esc_cor")
    cor.visit("/escalations", shot="escalations-list")
    main = cor.page.inner_text("main")
    assert "APP-esc" in main and "Toelaatbaarheid beoordelen" in main
    assert "naar Coördinator" in main
    cor.page.get_by_role("link", name="Toelaatbaarheid beoordelen").first.click()
    cor.page.wait_for_url(f"**/escalations/{task_id}")
    cor.check("escalation-task")
    detail = cor.page.inner_text("main")
    assert "Herinnering verstuurd" in detail and "Geëscaleerd" in detail and "is verstreken" in detail
    # Extending needs a reason: said next to the field, nothing changes.
    cor.fill("Nieuwe datum of termijn", "5 werkdagen")
    cor.click("Verlengen")
    cor.page.locator("#reason-error").wait_for()
    assert "Geef aan waarom" in cor.page.inner_text("#reason-error")
    cor.check("escalation-extend-refused")
    # Reassign to a colleague: one step, and the task leaves the escalation inbox.
    cor.fill("Gebruikersnaam", "esc_olly")
    cor.click("Anders toewijzen")
    cor.page.wait_for_url("**/escalations?done=reassigned")
    assert "De taak is anders toegewezen" in cor.page.inner_text("main")
    assert "APP-esc" not in cor.page.locator("table").first.inner_text()
    cor.check("escalations-after-reassign")
    # The office manager sees the overdue task below (it is no longer escalated).
    mia = ui("esc_mia")
    mia.visit("/escalations", shot="escalations-office-manager")
    assert "APP-esc" in mia.page.locator("table").nth(1).inner_text()
