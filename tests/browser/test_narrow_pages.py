"""Pages on a phone (390 px wide) in Chromium: a table scrolls inside its own box, or (the
candidate's invoices, the public register) turns each row into a card, so the page itself is
never wider than the screen and nobody pans the whole page sideways to read a row."""

from __future__ import annotations

import re
from typing import Callable

import pytest

from tests.browser.conftest import UI, App
from tests.browser.test_portal_flow import settle

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
ADDRESS = {"street": "Lange Nieuwstraat 120", "postal_code": "3512 PN", "city": "Utrecht", "country": "NL"}
STAFF_ROLES = ["office", "coordinator", "admin", "process_owner"]
# Pim applies and the office finds him eligible: an open invoice, a task, a case in the monitor.
# A registered professional with a long name for the public register.
DATA = """
from certflow.bootstrap import build_engine
from certflow.engine.facade import Actor
from certflow.store.db import session_scope
from certflow.store.register import Certificate, RegisterEntry
from tests.support import create_user
e = build_engine()
e.start(Actor("pim", ("candidate",)), "certification", "APP-pim",
        {"candidate": "pim", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
office = Actor("wout", ("office",), True)
task = next(t for t in e.inbox(office) if t.business_key == "APP-pim")
e.claim(office, task.id)
e.complete(office, task.id, {"eligible": True, "remarks": "HBO-diploma gezien"})
now = datetime.now(timezone.utc)
with session_scope() as s:
    create_user(s, "gijs", "Gijsbertus van Oldenbarnevelt-Wijnaldum", ["professional"])
    s.add(Certificate(id="c-gijs", idempotency_key="k-gijs", holder="gijs", register_number="RL-2026-09999",
                      level="RL", valid_from=date(2026, 3, 15), valid_until=date(2029, 3, 15),
                      status="valid", language="nl", created_at=now))
    s.flush()
    s.add(RegisterEntry(id="e-gijs", holder="gijs", register_number="RL-2026-09999",
                        certificate_id="c-gijs", status="valid", valid_until=date(2029, 3, 15), updated_at=now))
"""
IMPORTS = "from datetime import date, datetime, timezone\n"


@pytest.fixture(scope="module")
def people(app: App) -> App:
    app.person("pim", ["candidate"], address=ADDRESS)
    app.person("wout", STAFF_ROLES, is_staff=True)
    app.run(IMPORTS + DATA)
    settle(app)  # the invoice
    return app


def _on_phone(ui: Callable[..., UI], who: str | None) -> UI:
    person = ui(who)
    person.page.set_viewport_size(PHONE)
    return person


def _page_width(person: UI) -> int:
    return int(person.page.evaluate("document.documentElement.scrollWidth"))


def _cell_labels(row: object) -> list[str]:
    """What a phone shows above each cell of a card (the ``::before`` of its data-label)."""
    return [text.strip('"') for text in row.locator("td").evaluate_all(  # type: ignore[attr-defined]
        "cells => cells.map(c => getComputedStyle(c, '::before').content)")]


def test_candidate_and_public_tables_are_cards_on_a_phone(people: App, ui: Callable[..., UI]) -> None:
    pim = _on_phone(ui, "pim")
    pim.visit("/mijn/invoices", shot="narrow-mijn-invoices")
    assert _page_width(pim) <= PHONE["width"]
    card = pim.page.locator("tr[id^=invoice-]").first
    # Each cell says what it is, above its value, inside a card as wide as the screen.
    assert _cell_labels(card) == ["Nummer", "Datum", "Waarvoor", "Bedrag", "Status", "Downloaden"]
    assert card.bounding_box()["width"] <= PHONE["width"]
    assert "€ 786,50" in card.inner_text()
    assert re.search(r"betalingskenmerk \d{4} \d{4} \d{4} \d{4}\n", card.inner_text())
    visitor = _on_phone(ui, None)
    visitor.visit("/register?q=Oldenbarnevelt", shot="narrow-register")
    assert _page_width(visitor) <= PHONE["width"]
    row = visitor.page.locator("#results tbody tr").first
    assert _cell_labels(row)[-1] == "Geldig tot" and "15 maart 2029" in row.inner_text()
    assert row.bounding_box()["width"] <= PHONE["width"]


@pytest.mark.parametrize("who,path", [
    (None, "/sign-in"), (None, "/sign-up"), (None, "/password/forgot"), (None, "/register"),
    ("pim", "/mijn"), ("pim", "/account"), ("pim", "/mijn/data"),
])
def test_a_candidates_and_a_visitors_pages_fit_a_phone(people: App, ui: Callable[..., UI],
                                                       who: str | None, path: str) -> None:
    """Candidates sign up, confirm and keep their data mostly on a phone: every field and button
    fits the screen, nothing pans sideways."""
    person = _on_phone(ui, who)
    response = person.visit(path, shot="narrow" + path.replace("/", "-"))
    assert response.status == 200
    assert _page_width(person) <= PHONE["width"], f"{path} is wider than the phone"
    for field in person.page.locator("main input:visible, main button:visible, main select:visible").all():
        box = field.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], \
            f"{path}: {field.evaluate('e => e.outerHTML')[:120]} runs off the screen"


@pytest.mark.parametrize("path", ["/inbox", "/monitor", "/dashboard", "/dashboard/invoices", "/studio",
                                  "/studio/emails", "/analytics", "/escalations", "/admin/people"])
def test_staff_tables_scroll_in_their_own_box_on_a_phone(people: App, ui: Callable[..., UI], path: str) -> None:
    wout = _on_phone(ui, "wout")
    response = wout.visit(path, shot="narrow" + path.replace("/", "-"))
    assert response.status == 200
    assert _page_width(wout) <= PHONE["width"], f"{path} is wider than the phone"
    # The header and the content are as wide as the screen: nothing pans sideways.
    assert wout.page.locator("header").first.bounding_box()["width"] <= PHONE["width"]


def test_an_opened_task_comes_first_on_a_phone(people: App, ui: Callable[..., UI]) -> None:
    """The columns stack on a phone: the task someone opens is shown above the list (it was
    below all of it), and the empty panel's "choose a task on the left" is not shown."""
    people.person("roos", ["candidate"], address=ADDRESS)
    people.run("from certflow.bootstrap import build_engine\nfrom certflow.engine.facade import Actor\n"
               "build_engine().start(Actor('roos', ('candidate',)), 'certification', 'APP-roos', "
               "{'candidate': 'roos', 'eligibility_route': 'evc', 'motivation': 'Ik wil'})")
    settle(people)
    try:
        wout = _on_phone(ui, "wout")
        wout.visit("/inbox")
        assert not wout.page.locator(".empty-panel").is_visible()
        wout.page.locator(".tasklist a").first.click()
        wout.page.wait_for_selector("#task-title")
        wout.check("narrow-inbox-task")
        title, listing = wout.page.locator("#task-title"), wout.page.locator(".tasklist")
        assert title.bounding_box()["y"] < listing.bounding_box()["y"]
        assert _page_width(wout) <= PHONE["width"]
    finally:  # the app is shared: leave no eligibility check open in the office's queue
        people.run(DONE_WITH_ROOS)


DONE_WITH_ROOS = """
from certflow.bootstrap import build_engine
from certflow.engine.facade import Actor
e = build_engine()
office = Actor("wout", ("office",), True)
for task in [t for t in e.inbox(office) if t.business_key == "APP-roos"]:
    if task.assignee is None:
        e.claim(office, task.id)
    e.complete(office, task.id, {"eligible": False, "remarks": "Alleen voor de test op een telefoon"})
"""
