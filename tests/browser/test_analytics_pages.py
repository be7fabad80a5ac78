"""The dashboard and the process analytics in Chromium: certification cases run to the end
(driven in the app's database by the process tests' Driver, with the shared clock moved a few
hours between steps so the figures mean something), then the office's dashboard and the process
owner's analytics page show them, charts and tables, checked with axe-core and screenshotted
(tests/browser/artifacts/analytics-*.png). A mentor is refused.

The clock moves 66 hours in all, so this module runs on an app of its own: on the session's
shared app, cases the later tests start through the browser stalled after the move (seen
2026-11-30; the cause is not yet found, see the closing note of issue 8)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from tests.browser.conftest import UI, App, running_app

pytestmark = pytest.mark.browser

ADDRESS = {"street": "Neude 1", "postal_code": "3512 AE", "city": "Utrecht", "country": "NL"}
DOSSIER = {"knowledge": "Theorie", "tasks": "Begeleiding", "competences": "Coaching", "hours_spent": 35}
DRIVE = "from tests.browser.test_analytics_pages import drive\ndrive()\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with running_app(tmp_path_factory) as the_app:
        yield the_app


def drive() -> None:
    """Three first certifications to the end (two granted, one not eligible), run as their
    people would, in this process on the app's database; and two left open for the office's
    dashboard: one application to check (and), one invoice unpaid (ane)."""
    from decimal import Decimal

    from sqlalchemy import select

    from certflow.bootstrap import build_engine
    from certflow.services import payments
    from certflow.store.billing import Invoice
    from certflow.store.db import session_scope
    from tests.processes.driver import Driver
    from tests.support import Harness

    d = Driver(Harness(build_engine()))
    for name, groups, staff in (("anolga", ["office"], True), ("anmila", ["mentor"], False),
                                ("ankees", ["committee"], False), ("ancato", ["certifier"], True)):
        d.person(name, groups, staff)
    cases = {"ana": "APP-ana", "anb": "APP-anb", "anc": "APP-anc", "and": "APP-and", "ane": "APP-ane"}
    for who, key in cases.items():
        d.person(who, ["candidate"], address=ADDRESS)
        d.engine.start(d.people[who], "certification", key,
                       {"candidate": who, "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    d.settle()

    def do(hours: int, who: str, element: str, key: str, data: dict[str, Any]) -> None:
        if hours:
            d.later(f"PT{hours}H")
        actor = d.people[who]
        [task] = [t for t in d.engine.inbox(actor, limit=500) if t.element_id == element and t.business_key == key]
        if task.assignee is None:
            d.engine.claim(actor, task.id)
        d.engine.complete(actor, task.id, data)
        d.settle()

    def pay(candidate: str) -> None:
        with session_scope() as s:
            invoice = s.scalars(select(Invoice).where(Invoice.customer_username == candidate)).one()
            number, amount = invoice.number, invoice.gross_total
            payments.register_payment(s, d.engine.now(), invoice_number=number, amount=Decimal(amount),
                                      source="api", external_id=f"bank-{number}", actor="anolga")
        d.engine.deliver_message(d.people["anolga"], "payment_received", {"amount": str(amount)},
                                 correlation={"invoice_number": number})
        d.settle()

    do(3, "anolga", "check_eligibility", "APP-ana", {"eligible": True, "remarks": ""})
    do(5, "anolga", "check_eligibility", "APP-anb", {"eligible": True, "remarks": ""})
    do(1, "anolga", "check_eligibility", "APP-anc", {"eligible": False, "remarks": "Geen diploma"})
    do(0, "anolga", "check_eligibility", "APP-ane", {"eligible": True, "remarks": ""})
    pay("ana")
    pay("anb")
    do(2, "anolga", "assign_mentor", "APP-ana", {"mentor": "anmila"})
    do(20, "anolga", "assign_mentor", "APP-anb", {"mentor": "anmila"})
    do(6, "ana", "write_dossier", "APP-ana", DOSSIER)
    do(10, "anb", "write_dossier", "APP-anb", DOSSIER)
    do(4, "anmila", "review_dossier", "APP-ana", {"approved": True, "feedback": "Goed"})
    do(2, "anmila", "review_dossier", "APP-anb", {"approved": True, "feedback": "Goed"})
    do(8, "ankees", "oral_assessment", "APP-ana", {"advice": "positive", "notes": "Overtuigend"})
    do(3, "ankees", "oral_assessment", "APP-anb", {"advice": "positive", "notes": "Overtuigend"})
    do(1, "ancato", "decide_certification", "APP-ana", {"granted": True, "reason": "Voldoet"})
    do(1, "ancato", "decide_certification", "APP-anb", {"granted": True, "reason": "Voldoet"})


def finished(owner: UI) -> int:
    owner.visit("/analytics?process=certification")
    numbers = owner.page.locator("[data-finished]")
    return sum(int(numbers.nth(i).get_attribute("data-finished") or 0) for i in range(numbers.count()))


@pytest.mark.timeout(900)
def test_finished_cases_show_on_the_dashboard_and_in_analytics(app: App, ui: Callable[..., UI]) -> None:
    app.person("anpia", ["process_owner"], is_staff=True)
    app.person("anotto", ["office"], is_staff=True)
    app.person("anmia", ["mentor"])
    owner = ui("anpia")
    before = finished(owner)
    app.run(DRIVE)

    # The process owner: the three cases are counted, each step has its cycle time.
    owner.visit("/", shot=None)
    owner.page.get_by_role("link", name="Dashboard").first.click()
    owner.page.get_by_role("link", name="Procesanalyse").click()
    owner.page.wait_for_selector("text=Doorlooptijd per stap")
    assert finished(owner) == before + 3
    main = owner.page.locator("main")
    assert "Toelaatbaarheid beoordelen" in main.inner_text()
    assert owner.page.locator("svg[role=img]").count() >= 3
    steps = owner.page.get_by_role("table").filter(has_text="Besluit certificering").first
    row = steps.get_by_role("row").filter(has_text="Toelaatbaarheid beoordelen")
    assert "u" in row.inner_text() or "dagen" in row.inner_text()  # hours, not "under a minute"
    owner.check("analytics-process")
    # The period: a preset link, and an impossible period refused with the reason.
    owner.page.get_by_role("link", name="Afgelopen 30 dagen").click()
    owner.page.wait_for_selector("text=Doorlooptijd per stap")
    owner.page.get_by_label("Van", exact=True).fill("2026-05-01")
    owner.page.get_by_label("Tot en met", exact=True).fill("2026-04-01")
    owner.click("Tonen")
    owner.page.wait_for_selector("[data-error-summary]")
    assert "De einddatum moet op of na de begindatum liggen." in owner.page.inner_text("[data-error-summary]")
    assert owner.page.locator("[data-finished]").count() == 0
    owner.check("analytics-bad-period")

    # The office: today's work, every number a link to the list behind it.
    office = ui("anotto")
    office.visit("/dashboard", shot="analytics-dashboard")
    assert office.page.get_by_role("link", name=re.compile("onbetaalde facturen")).count() == 1
    office_row = office.page.get_by_role("row").filter(has_text="Bureau")
    assert office_row.get_by_role("link").count() >= 1  # open office work links into the inbox
    office_row.get_by_role("link").first.click()
    office.page.wait_for_url(re.compile(r"/inbox\?group=office"))
    assert "APP-and" in office.page.inner_text("main")
    office.visit("/dashboard")
    office.page.get_by_role("link", name=re.compile("onbetaalde facturen")).click()
    office.page.wait_for_selector("h1:has-text('Onbetaalde facturen')")
    assert "Ane" in office.page.inner_text("main")
    office.check("analytics-unpaid-invoices")
    office.visit("/dashboard/certificates", shot="analytics-expiring")

    # A mentor may see neither.
    mentor = ui("anmia")
    for path in ("/dashboard", "/analytics"):
        response = mentor.visit(path)
        assert response.status == 403
        assert "Doorlooptijd" not in mentor.page.inner_text("main")
    mentor.check("analytics-refused")
