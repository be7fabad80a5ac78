"""The dashboard and the analytics pages in-process: who may see them (the office and process
owners; not candidates or mentors), what a clerk reads there after a real certification ran
to the end, the links behind the numbers, and a bad period refused with the reason."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from certflow.bootstrap import build_engine
from tests.processes.driver import PROCESSES, Driver
from tests.support import Harness
from tests.web.pages_support import ADDRESS, Browser, person

DOSSIER = {"knowledge": "Theorie", "tasks": "Begeleiding", "competences": "Coaching", "hours_spent": 35}


@pytest.fixture
def finished(sqlite_url: str) -> Driver:
    """One first certification granted (cas), one waiting for payment (bea), one application
    still at the office (ben)."""
    h = Harness(build_engine())
    d = Driver(h)
    h.engine.deploy(h.staff, PROCESSES, only=["certification", "certificate_lifecycle"])
    d.person("cas", ["candidate"], address=ADDRESS)
    d.person("bea", ["candidate"], address=ADDRESS)
    d.person("ben", ["candidate"], address=ADDRESS)
    d.person("olga", ["office"], staff=True)
    d.person("mila", ["mentor"])
    d.person("kees", ["committee"])
    d.person("cato", ["certifier"], staff=True)
    for who in ("cas", "bea"):
        d.engine.start(d.people[who], "certification", f"APP-{who}",
                       {"candidate": who, "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
        d.settle()
        d.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    d.engine.start(d.people["ben"], "certification", "APP-ben",
                   {"candidate": "ben", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    d.settle()
    from sqlalchemy import select

    from certflow.services import payments
    from certflow.store.billing import Invoice
    from certflow.store.db import session_scope

    with session_scope() as s:  # the bank statement comes in, as the payments API records it
        invoice = s.scalars(select(Invoice).where(Invoice.customer_username == "cas")).one()
        number, amount = invoice.number, str(invoice.gross_total)
        payments.register_payment(s, d.engine.now(), invoice_number=number, amount=invoice.gross_total,
                                  source="api", external_id="bank-1", actor="olga")
    d.engine.deliver_message(d.people["olga"], "payment_received", {"amount": amount},
                             correlation={"invoice_number": number})
    d.settle()
    d.do("olga", "assign_mentor", {"mentor": "mila"})
    d.do("cas", "write_dossier", DOSSIER)
    d.do("mila", "review_dossier", {"approved": True, "feedback": "Goed"})
    d.do("kees", "oral_assessment", {"advice": "positive", "notes": "Overtuigend"})
    d.do("cato", "decide_certification", {"granted": True, "reason": "Voldoet"})
    return d


def _signed_in(username: str, roles: list[str], staff: bool) -> Browser:
    email = person(username, roles, staff=staff)
    browser = Browser()
    browser.sign_in(email)
    return browser


@pytest.mark.parametrize("path", ["/dashboard", "/analytics", "/dashboard/invoices", "/dashboard/certificates"])
def test_candidates_and_mentors_are_refused(sqlite_url: str, path: str) -> None:
    for username, roles in (("rob", ["candidate"]), ("mia", ["mentor"])):
        page = _signed_in(username, roles, False).get(path)
        assert page.status_code == 403
        assert "Dashboard" not in page.text.split("<main", 1)[1]
    anonymous = Browser().get(path, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/sign-in")


def test_the_menu_shows_the_dashboard_to_the_office_only(sqlite_url: str) -> None:
    assert 'href="/dashboard"' in _signed_in("otto", ["office"], True).get("/account").text
    assert 'href="/dashboard"' in _signed_in("pia", ["process_owner"], True).get("/account").text
    assert 'href="/dashboard"' not in _signed_in("mia", ["mentor"], False).get("/account").text


def test_dashboard_counts_link_to_their_lists(finished: Driver) -> None:
    office = _signed_in("otto", ["office"], True)
    page = office.get("/dashboard")
    assert page.status_code == 200
    text = page.text
    # bea's application waits at the office: one open office task, linked to the inbox.
    assert re.search(r'href="/inbox\?group=office"[^>]*>1</a>', text)
    assert 'href="/dashboard/invoices"' in text and 'href="/dashboard/certificates"' in text
    assert "<svg" in text and "<title" in text  # the chart, with its accessible title
    invoices = office.get("/dashboard/invoices").text
    main = invoices.split("<main", 1)[1]
    assert "Bea" in main and "Cas" not in main  # bea has not paid, cas has
    assert office.get("/dashboard/certificates").status_code == 200
    # Payments waiting for the office: none yet; then one that named no invoice.
    assert re.search(r'href="/payments"><span class="figure-number">0</span>\s*'
                     r'<span class="figure-label">betalingen te bekijken', text)
    from certflow.services import payments
    from certflow.store.db import session_scope

    with session_scope() as s:
        payments.register_payment(s, finished.engine.now(), payment_reference="lidmaatschap", amount=Decimal("50"),
                                  source="api", external_id="bank-2", actor="otto")
    assert re.search(r'href="/payments"><span class="figure-number">1</span>\s*'
                     r'<span class="figure-label">betaling te bekijken', office.get("/dashboard").text)


def test_analytics_shows_the_finished_case_per_version(finished: Driver) -> None:
    owner = _signed_in("pia", ["process_owner"], True)
    page = owner.get("/analytics?process=certification")
    assert page.status_code == 200
    main = page.text.split("<main", 1)[1]
    assert 'data-finished="1"' in main  # cas's certification
    assert "Versie 1" in main
    for step in ("Toelaatbaarheid beoordelen", "Dossier schrijven"):
        assert step in main, step
    assert main.count('role="img"') >= 3  # cycle time, where cases wait, lead time
    assert "<table" in main


def test_a_bad_period_is_refused_with_the_reason(finished: Driver) -> None:
    owner = _signed_in("pia", ["process_owner"], True)
    page = owner.get("/analytics?process=certification&from=2026-05-01&to=2026-04-01")
    assert page.status_code == 400
    assert "De einddatum moet op of na de begindatum liggen." in page.text
    assert 'data-finished' not in page.text
    page = owner.get("/analytics?from=gisteren")
    assert page.status_code == 400 and 'aria-invalid="true"' in page.text
    page = owner.get("/analytics?process=nope")
    assert page.status_code == 400 and "Kies een proces uit de lijst." in page.text


@pytest.mark.parametrize("period", ["from=9999-12-31&to=9999-12-31", "from=0001-01-01&to=0001-01-02",
                                    "from=2026-01-01&to=9999-12-31"])
def test_a_day_outside_the_calendar_s_sane_years_is_refused(sqlite_url: str, period: str) -> None:
    """The first and last days Python knows overflowed into a 500 when made Amsterdam time."""
    h = Harness(build_engine())
    h.engine.deploy(h.staff, PROCESSES, only=["certification"])
    owner = _signed_in("pia", ["process_owner"], True)
    page = owner.get(f"/analytics?process=certification&{period}")
    assert page.status_code == 400
    assert "Vul een datum in met dag, maand en jaar" in page.text


def test_a_process_owner_sees_the_figures_but_not_who_owes(finished: Driver) -> None:
    """Who has not paid is personal data (certflow.roles): the office's list. A process owner
    has the dashboard's figures, without the list of debtors behind them."""
    owner = _signed_in("pia", ["process_owner"], True)
    page = owner.get("/dashboard").text.split("<main", 1)[1]
    assert "onbetaalde facturen" in page and 'href="/dashboard/invoices' not in page
    assert 'href="/payments"' not in page and "te bekijken" not in page
    refused = owner.get("/dashboard/invoices")
    assert refused.status_code == 403 and "Bea" not in refused.text


def test_in_english(finished: Driver) -> None:
    email = person("pete", ["process_owner"], staff=True, language="en")
    owner = Browser()
    owner.sign_in(email)
    main = owner.get("/analytics?process=certification").text.split("<main", 1)[1]
    assert "Cycle time per step" in main and "Version 1" in main and "Where cases wait" in main
    dashboard = owner.get("/dashboard").text.split("<main", 1)[1]
    assert "unpaid invoices" in dashboard and "Open tasks per group" in dashboard


def test_the_pages_read_the_database_of_the_test_that_opens_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test has a database of its own (tests/conftest.py): the process's engine the pages
    use (certflow.bootstrap.engine, built by the first page that needs it) is one on that
    database, not on the database of an earlier test that opened such a page. It was kept
    from test to test, so this file's pages read another test's rows and passed only when that
    test had made the same ones (run after a test opening /inbox: 400s and counts missing)."""
    from tests.conftest import sqlite_database

    for folder in ("earlier", "this"):
        (tmp_path / folder).mkdir()
    with sqlite_database(tmp_path / "earlier", monkeypatch):
        owner = _signed_in("pia", ["process_owner"], True)
        assert "Versie 1" not in owner.get("/analytics").text  # nothing deployed there
    with sqlite_database(tmp_path / "this", monkeypatch):
        h = Harness(build_engine())
        h.engine.deploy(h.staff, PROCESSES, only=["certification"])
        owner = _signed_in("pia", ["process_owner"], True)
        page = owner.get("/analytics?process=certification")
        assert page.status_code == 200, "the page asked the earlier database for the process"
        assert "Versie 1" in page.text.split("<main", 1)[1]
