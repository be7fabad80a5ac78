"""A first certification in Chromium, as the people who do it: a candidate registers, applies
(one question per page, check your answers), uploads a dossier document and writes the
dossier, and downloads the certificate; meanwhile the office, the mentor, the committee and the
certifier work in their inboxes, each in their own browser side by side. Service tasks run
between the steps through the engine's job runner (``settle``). Every page is
checked with axe-core and screenshotted (tests/browser/artifacts/portal-*.png).

Bad input on the way: a question left unanswered, a task form with a missing reason, an upload
of the wrong type, another person's case and document ids."""

from __future__ import annotations

import re
import time
from typing import Callable

import pytest

from tests.browser.conftest import UI, App

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def wait_for(what: str, probe: Callable[[], object], timeout: float = 240, app: App | None = None) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{app.logs()}" if app else ""))


def open_task(person: UI, title: str, shot: str, candidate: str | None = None) -> None:
    """From the inbox, open the first task with this title (reloading until it is there); with
    ``candidate``, of that candidate's case only (the inbox's filter): the browser tests share
    one app, and an earlier test's cases wait in the same queues."""
    def listed() -> bool:
        person.visit("/inbox" + (f"?candidate={candidate}" if candidate else ""))
        return person.page.get_by_role("link", name=title).count() > 0
    wait_for(f"{title!r} in the inbox", listed, app=person.app)
    person.page.get_by_role("link", name=title).first.click()
    person.page.wait_for_selector("#task-title")
    person.check(shot)


def claim_and_complete(person: UI, shot: str, fill: Callable[[UI], None]) -> None:
    if person.page.get_by_role("button", name="In behandeling nemen").count():
        person.click("In behandeling nemen")
        person.page.get_by_role("button", name="Taak afronden").wait_for()
    fill(person)
    person.check(shot)
    person.click("Taak afronden")
    person.page.wait_for_selector("text=De taak is afgerond.")


def register(candidate: UI) -> None:
    """A sign-up of its own: the browser tests share one app, and test_accounts_pages signs
    up bea@example.nl already."""
    candidate.visit("/sign-up")
    candidate.fill("Volledige naam", "Bea Bakker")
    candidate.fill("E-mailadres", "bea.portal@example.nl")
    candidate.fill("Geboortedatum", "1990-05-17")
    candidate.fill("Straat en huisnummer", "Vredenburg 40")
    candidate.fill("Postcode", "3511 BD")
    candidate.fill("Woonplaats", "Utrecht")
    candidate.fill("Kies een wachtwoord", "bea's goede wachtwoord")
    candidate.fill("Herhaal het wachtwoord", "bea's goede wachtwoord")
    candidate.page.get_by_label(re.compile("Ik ga ermee akkoord")).check()
    candidate.click("Account aanmaken")
    candidate.page.wait_for_selector("h1:has-text('Kijk in uw e-mail')")
    candidate.visit(candidate.app.mail_link("bea.portal@example.nl", "/sign-up/confirm/"))
    candidate.fill("Wachtwoord", "bea's goede wachtwoord")  # the one chosen on the form
    candidate.click("Bevestigen")
    candidate.page.wait_for_url(re.compile(r"/mijn"))


def apply(candidate: UI) -> None:
    candidate.visit("/mijn", shot="portal-mijn-new")
    candidate.page.get_by_role("link", name="Eerste certificering aanvragen").first.click()
    candidate.check("portal-apply-route")
    candidate.click("Verder")
    assert "Kies een van de mogelijkheden." in candidate.page.inner_text("[data-error-summary]")
    candidate.check("portal-apply-route-error")
    candidate.page.get_by_label(re.compile("EVC")).check()
    candidate.click("Verder")
    candidate.fill("Waarom vraagt u certificering aan?", "Ik begeleid al tien jaar mensen in hun loopbaan.")
    candidate.check("portal-apply-motivation")
    candidate.click("Verder")
    assert "Ik begeleid al tien jaar" in candidate.page.inner_text("main")
    candidate.check("portal-apply-check")
    candidate.click("Versturen")
    candidate.page.wait_for_selector("text=Uw kenmerk")
    candidate.check("portal-apply-sent")


JOBS = """
from sqlalchemy import select
from certflow.bootstrap import build_engine
from certflow.store.db import session_scope
from certflow.store.models import Job
engine = build_engine()
for _ in range(30):
    with engine.session() as s:  # reads the shared clock, which other tests may have moved
        ids = list(s.scalars(select(Job.id).where(Job.status == "queued", Job.available_at <= engine.now())
                             .order_by(Job.id)))
    if not ids and not engine.drain_messages():
        break
    for job_id in ids:
        engine.run_job(job_id)
"""
INVOICE = """
import json
from sqlalchemy import select
from certflow.store.billing import Invoice
from certflow.store.db import session_scope
with session_scope() as s:
    invoice = s.scalars(select(Invoice).where(Invoice.customer_username == {username!r})).first()
    print(json.dumps([invoice.number, str(invoice.gross_total)] if invoice else None))
"""
PAYMENT = """
from certflow.bootstrap import engine
from certflow.engine.facade import Actor
engine().deliver_message(Actor.system(), "payment_received", {{"amount": {amount!r}}},
                         correlation={{"invoice_number": {number!r}}})
"""


def settle(app: App) -> None:
    """Run every due service task (e-mail, invoice, certificate) as a worker would. The
    embedded broker's worker is not used here: this flow is about the pages, and one run per
    step keeps it fast and deterministic on a busy machine."""
    app.run(JOBS)


def pay(app: App, username: str) -> None:
    """The bank statement arrives (matching payments is not part of this flow)."""
    found = wait_for("the invoice", lambda: app.run(INVOICE.format(username=username)), app=app)
    number, amount = found  # type: ignore[misc]
    app.run(PAYMENT.format(number=number, amount=amount))
    settle(app)


@pytest.mark.timeout(1500)  # a whole certification, with a real worker running every job
def test_first_certification_in_the_browser(app: App, ui: Callable[..., UI],
                                             tmp_path) -> None:
    app.person("orla", ["office"], is_staff=True)
    app.person("milou", ["mentor"])
    app.person("maxim", ["mentor"])
    app.person("koen", ["committee"])
    app.person("carla", ["certifier"], is_staff=True)
    candidate = ui()
    register(candidate)
    username = app.run("import json\nfrom sqlalchemy import select\nfrom certflow.store.db import session_scope\n"
                       "from certflow.store.models import User\nwith session_scope() as s:\n"
                       "    print(json.dumps(s.scalar(select(User.username).where(User.email == 'bea.portal@example.nl'))))\n")
    apply(candidate)
    settle(app)

    office = ui("orla")
    open_task(office, "Toelaatbaarheid beoordelen", "portal-inbox-task")
    office.visit("/inbox", shot="portal-inbox")
    assert "Bea" in office.page.inner_text("main") or username in office.page.inner_text("main")
    open_task(office, "Toelaatbaarheid beoordelen", "portal-inbox-eligibility", candidate=username)

    office.click("In behandeling nemen")
    office.page.get_by_role("button", name="Taak afronden").wait_for()
    office.page.get_by_role("radio", name="Nee").check()
    office.click("Taak afronden")
    assert "Vul dit veld in." in office.page.inner_text("[data-error-summary]")
    office.check("portal-inbox-eligibility-error")
    office.page.get_by_role("radio", name="Ja").check()
    office.click("Taak afronden")
    office.page.wait_for_selector("text=De taak is afgerond.")
    settle(app)

    pay(app, username)
    open_task(office, "Mentor toewijzen", "portal-inbox-assign-mentor", candidate=username)
    claim_and_complete(office, "portal-inbox-assign-mentor-filled",
                       lambda p: p.fill("Mentor (gebruikersnaam)", "milou"))
    settle(app)

    # The candidate's turn: the dossier, with a document (a wrong one first).
    candidate.visit("/mijn", shot="portal-mijn-dossier-due")
    candidate.page.get_by_role("link", name="Dossier schrijven").first.click()
    candidate.check("portal-dossier")
    wrong = tmp_path / "dossier.pdf"
    wrong.write_bytes(b"MZ\x90\x00 this is a program, not a PDF")
    candidate.page.set_input_files("#file", str(wrong))
    candidate.click("Uploaden")
    assert "Dit bestand is geen PDF" in candidate.page.inner_text("[data-error-summary]")
    candidate.check("portal-upload-refused")
    candidate.page.go_back()
    right = tmp_path / "mijn dossier.pdf"
    right.write_bytes(PDF)
    candidate.page.set_input_files("#file", str(right))
    candidate.click("Uploaden")
    candidate.page.wait_for_selector("text=Uw document is toegevoegd.")
    candidate.fill("Kennis", "Mijn antwoorden op de kennisvragen.")
    candidate.fill("Taken", "Loopbaangesprekken, assessments.")
    candidate.fill("Competenties", "Zie de bijlage.")
    candidate.fill("Bestede uren", "35,5")
    candidate.check("portal-dossier-filled")
    candidate.click("Versturen")
    candidate.page.wait_for_selector("text=Dank u, uw antwoord is verstuurd.")
    settle(app)

    mentor = ui("milou")
    open_task(mentor, "Dossier beoordelen (mentor)", "portal-mentor-task", candidate=username)
    assert "mijn dossier.pdf" in mentor.page.inner_text("main")
    assert "Mijn antwoorden op de kennisvragen." in mentor.page.inner_text("main")  # the dossier, shown
    doc_href = mentor.page.get_by_role("link", name="mijn dossier.pdf").get_attribute("href")
    claim_and_complete(mentor, "portal-mentor-filled",
                       lambda p: (p.page.get_by_role("radio", name="Ja").check(), p.fill("Feedback", "Sterk dossier.")))
    settle(app)
    # Another mentor cannot fetch the document by its id.
    other = ui("maxim")
    refused = other.visit(doc_href)
    assert refused.status in (403, 404)
    other.check("portal-other-mentor-refused")

    committee = ui("koen")
    open_task(committee, "Mondeling assessment", "portal-committee-task", candidate=username)
    claim_and_complete(committee, "portal-committee-filled",
                       lambda p: (p.page.get_by_role("radio", name="positief").check(),
                                  p.fill("Verslag", "Overtuigend gesprek.")))
    settle(app)
    certifier = ui("carla")
    open_task(certifier, "Besluit certificering", "portal-certifier-task", candidate=username)
    claim_and_complete(certifier, "portal-certifier-filled",
                       lambda p: (p.page.get_by_role("radio", name="Ja").check(), p.fill("Motivering", "Voldoet.")))
    settle(app)

    def certificate_listed() -> bool:
        candidate.visit("/mijn/certificates")
        return candidate.page.get_by_role("link", name="Het certificaat downloaden (PDF)").count() > 0
    wait_for("the certificate", certificate_listed, timeout=240)
    candidate.check("portal-certificates")
    with candidate.page.expect_download() as download:
        candidate.page.get_by_role("link", name="Het certificaat downloaden (PDF)").click()
    assert download.value.path().read_bytes().startswith(b"%PDF")
    candidate.visit("/mijn/invoices", shot="portal-invoices")
    assert "€ 786,50" in candidate.page.inner_text("main")
    candidate.visit("/mijn", shot="portal-mijn-certified")
    candidate.visit("/mijn/data", shot="portal-my-data")
