"""Mijn CMI as a candidate sees it (in-process browser): apply one question per page with
check-your-answers, see where the case stands, upload documents (type and size checked), do
the dossier task, download invoices, export my data, ask for erasure; and never reach another
candidate's things."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

import certflow.bootstrap
import handlers.email  # noqa: F401  (registers email/send)
import handlers.invoicing  # noqa: F401  (registers invoicing/*)
from certflow.engine.facade import Actor
from certflow.registry import HandlerContext
from certflow.services import case_documents as documents
from certflow.settings import get_settings, reset_settings
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import Instance, User
from certflow.store.register import Certificate, RegisterEntry
from handlers import REGISTRY
from tests.processes.driver import PROCESSES
from tests.support import Harness
from tests.web.pages_support import ADDRESS, Browser, person

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def site(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    harness.engine.deploy(Actor.system(), PROCESSES,
                          only=["certification", "recertification_written", "orders", "data_erasure"])
    # The pages ask certflow.bootstrap for the process's engine: this test's, on its database.
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: harness.engine)
    return {"cas": person("cas", ["candidate"], address=ADDRESS),
            "bea": person("bea", ["candidate"], address=ADDRESS),
            "olga": person("olga", ["office"], staff=True)}


def _docs(case: str) -> list:
    with session_scope() as session:
        return documents.for_case(session, Actor("cas", ("candidate",)), case)


def signed_in(site: dict[str, str], who: str) -> Browser:
    b = Browser()
    b.sign_in(site[who])
    return b


def apply(b: Browser) -> str:
    first = b.post("/mijn/apply", {"step": "0"}, form_page="/mijn/apply")
    assert first.status_code == 422  # nothing chosen: the question again, with its error
    assert 'aria-invalid="true"' in first.text
    second = b.post("/mijn/apply", {"step": "0", "eligibility_route": "evc"}, form_page="/mijn/apply")
    assert 'name="motivation"' in second.text and 'name="eligibility_route" value="evc"' in second.text
    check = b.post("/mijn/apply", {"step": "1", "eligibility_route": "evc", "motivation": "Ik begeleid al 10 jaar"},
                   form_page="/mijn/apply")
    assert "Ik begeleid al 10 jaar" in check.text and "step=0" in check.text  # change links
    sent = b.post("/mijn/apply", {"submit": "yes", "eligibility_route": "evc",
                                  "motivation": "Ik begeleid al 10 jaar"}, form_page="/mijn/apply")
    assert sent.status_code == 200
    return re.search(r'href="/mijn/cases/([0-9a-f]+)"', sent.text).group(1)


def test_apply_then_follow_the_case_and_add_documents(site: dict[str, str], harness: Harness) -> None:
    b = signed_in(site, "cas")
    case = apply(b)
    harness.run_jobs()  # the confirmation e-mail; then the office's check is open
    overview = b.get("/mijn")
    assert "Toelaatbaarheid beoordelen" in overview.text
    page = b.get(f"/mijn/cases/{case}")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    ok = b.client.post(f"/mijn/cases/{case}/documents", data={"csrf_token": token},
                       files={"file": ("diploma.pdf", PDF, "application/pdf")})
    assert ok.status_code == 200 and "diploma.pdf" in ok.text
    wrong = b.client.post(f"/mijn/cases/{case}/documents", data={"csrf_token": token},
                          files={"file": ("diploma.pdf", b"MZ\x90\x00binary", "application/pdf")})
    assert wrong.status_code == 415 and "PDF" in wrong.text
    big = b.client.post(f"/mijn/cases/{case}/documents", data={"csrf_token": token},
                        files={"file": ("big.pdf", PDF + b"0" * documents.MAX_BYTES, "application/pdf")})
    assert big.status_code == 413 and "10 MB" in big.text
    assert len(_docs(case)) == 1
    # Another candidate: not their case, not their upload.
    bea = signed_in(site, "bea")
    assert bea.get(f"/mijn/cases/{case}").status_code in (403, 404)
    bea_token = re.search(r'name="csrf_token" value="([^"]+)"', bea.get("/mijn").text).group(1)
    refused = bea.client.post(f"/mijn/cases/{case}/documents", data={"csrf_token": bea_token},
                              files={"file": ("x.pdf", PDF, "application/pdf")})
    assert refused.status_code in (403, 404)
    assert len(_docs(case)) == 1


def test_recertification_refused_with_what_to_do_instead(site: dict[str, str]) -> None:
    b = signed_in(site, "cas")
    # Not in the register: not offered on Mijn CMI, and told at once, before any question.
    assert 'href="/mijn/recertify"' not in b.get("/mijn").text
    at_once = b.get("/mijn/recertify")
    assert at_once.status_code == 200
    assert "U staat niet in het register. Vraag eerst de eerste certificering aan." in at_once.text
    assert "Hoe wilt u hercertificeren?" not in at_once.text and "Opnieuw beginnen" not in at_once.text
    # Posting the answers anyway: the start refuses them still.
    b.post("/mijn/recertify", {"step": "0", "route": "written"}, form_page="/mijn/apply")
    refused = b.post("/mijn/recertify", {"submit": "yes", "route": "written", "level": "same"},
                     form_page="/mijn/apply")
    assert refused.status_code == 422
    # The start guard's refusal, in Dutch: what to do instead.
    assert "U staat niet in het register. Vraag eerst de eerste certificering aan." in refused.text
    assert "You are not in the register" not in refused.text


def test_a_certificate_holder_is_offered_recertification_and_asked_the_first_question(
        site: dict[str, str]) -> None:
    now = datetime.now(UTC)
    with session_scope() as session:
        session.add(Certificate(id="c-bea", idempotency_key="k-bea", holder="bea", register_number="RL-2026-00008",
                                level="RL", valid_from=date(2026, 1, 2), valid_until=date(2029, 1, 2),
                                status="valid", language="nl", created_at=now))
        session.flush()
        session.add(RegisterEntry(id="e-bea", holder="bea", register_number="RL-2026-00008",
                                  certificate_id="c-bea", status="valid", valid_until=date(2029, 1, 2),
                                  updated_at=now))
    bea = signed_in(site, "bea")
    assert 'href="/mijn/recertify"' in bea.get("/mijn").text
    first = bea.get("/mijn/recertify")
    assert first.status_code == 200 and "Hoe wilt u hercertificeren?" in first.text
    assert "Dit is niet mogelijk" not in first.text


def test_export_and_erasure_request(site: dict[str, str], harness: Harness) -> None:
    b = signed_in(site, "cas")
    exported = b.get("/mijn/data/export")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    assert json.loads(exported.content)["account"]["username"] == "cas"
    saved = b.post("/mijn/data/newsletter", {"newsletter": "no"}, form_page="/mijn/data")
    assert saved.status_code == 200 and 'value="no" checked' in saved.text
    asked = b.post("/mijn/data/erasure", {"reason": "Ik stop"}, form_page="/mijn/data")
    assert asked.status_code == 200
    olga = signed_in(site, "olga")
    assert "Verwijderverzoek beoordelen" in olga.get("/inbox").text
    again = b.post("/mijn/data/erasure", {"reason": ""}, form_page="/mijn/data")
    assert again.status_code == 409


def test_invoices_of_others_are_not_found(site: dict[str, str]) -> None:
    b = signed_in(site, "bea")
    assert b.get("/mijn/invoices/2026-000001/pdf").status_code in (403, 404)
    assert b.get("/mijn/certificates/deadbeef/pdf").status_code in (403, 404)



@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_invoice_mail_links_to_that_invoice_in_mijn_cmi(site: dict[str, str], language: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_PUBLIC_URL", "https://mijn.cmi.example/")
    reset_settings()
    settings = get_settings()
    with session_scope() as session:
        session.get_one(User, "cas").language = language

        def ctx() -> HandlerContext:
            return HandlerContext(session=session, now=datetime.now(UTC),
                                  idempotency_key=uuid.uuid4().hex, settings=settings)
        invoice = REGISTRY["invoicing/create_invoice"](ctx(), {"customer": "cas",
                                                               "product": "english_certificate"})
        number = invoice["invoice_number"]
        REGISTRY["email/send"](ctx(), {
            "recipient": "cas", "template": "certification/invoice_sent",
            "context": {"invoice_number": number, "total": "26.62",
                        "payment_reference": invoice["payment_reference"]}})
        mail = session.scalars(select(EmailMessage)).one()
        text, html = mail.body_text, mail.body_html
    link = f"https://mijn.cmi.example/mijn/invoices#invoice-{number}"
    words = {"nl": "U vindt de factuur ook in Mijn CMI", "en": "You can also find the invoice in My CMI"}
    assert f"{words[language]}: {link}" in text
    assert f'href="{link}"' in html
    # The link works: signed out, the sign-in comes back to the invoices page; signed in, the
    # page has that invoice's row, which the fragment scrolls to.
    anonymous = Browser().get("/mijn/invoices", follow_redirects=False)
    assert anonymous.status_code in (302, 303)
    assert "next=/mijn/invoices" in anonymous.headers["location"]
    page = signed_in(site, "cas").get("/mijn/invoices")
    row = re.search(rf'<tr id="invoice-{re.escape(number)}">(.*?)</tr>', page.text, re.S)
    assert page.status_code == 200 and row and f"/mijn/invoices/{number}/pdf" in row.group(1)


def test_an_order_the_start_would_refuse_is_refused_before_the_check_page(site: dict[str, str]) -> None:
    """No valid certificate, no English one: said when the product is chosen, with the way
    back to choose again (the book), not after the check page's "Versturen"."""
    b = signed_in(site, "cas")
    refused = b.post("/mijn/order", {"step": "0", "product": "english_certificate"}, form_page="/mijn/order")
    assert refused.status_code == 422 and "Dit is niet mogelijk" in refused.text
    assert "alleen worden besteld door wie een geldig certificaat" in refused.text
    assert 'href="/mijn/order"' in refused.text and 'name="submit"' not in refused.text
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 0
    book = b.post("/mijn/order", {"step": "1", "product": "book", "quantity": "2"}, form_page="/mijn/order")
    assert book.status_code == 200 and 'name="submit"' in book.text


@pytest.mark.parametrize("digit", ["²", "٣", "1" * 30])
def test_a_step_or_quantity_that_is_no_plain_number_is_asked_again(site: dict[str, str], digit: str) -> None:
    """``"²".isdigit()`` is true and int("²") raises (a 500); "٣" (Arabic-Indic 3) was read as 3
    and ordered three books."""
    b = signed_in(site, "cas")
    assert b.get(f"/mijn/order?product=book&step={digit}").status_code == 200  # the first question
    assert b.post("/mijn/order", {"product": "book", "step": digit}, form_page="/mijn/order").status_code == 200
    asked = b.post("/mijn/order", {"product": "book", "quantity": digit, "step": "1"}, form_page="/mijn/order")
    assert asked.status_code == 422 and "Vul een geheel getal van 1 tot en met 50 in." in asked.text
    sent = b.post("/mijn/order", {"product": "book", "quantity": digit, "submit": "yes"}, form_page="/mijn/order")
    assert sent.status_code == 422 and "Vul een geheel getal van 1 tot en met 50 in." in sent.text
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 0


def _open_invoice(product: str = "english_certificate") -> dict[str, str]:
    with session_scope() as session:
        return REGISTRY["invoicing/create_invoice"](HandlerContext(
            session=session, now=datetime.now(UTC), idempotency_key=uuid.uuid4().hex,
            settings=get_settings()), {"customer": "cas", "product": product})


def _section(html: str, title_id: str) -> str:
    found = re.search(rf'<section aria-labelledby="{title_id}">(.*?)</section>', html, re.S)
    assert found, title_id
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))


def test_an_unpaid_invoice_is_what_to_do_with_how_to_pay_it(site: dict[str, str]) -> None:
    """Mijn CMI said "Op dit moment niets" while an invoice waited: now it says what to pay,
    by when, to which account, with which reference, and where the invoice is."""
    invoice = _open_invoice()
    number, reference = invoice["invoice_number"], invoice["payment_reference"]
    grouped = " ".join(reference[i:i + 4] for i in range(0, 16, 4))
    page = signed_in(site, "cas").get("/mijn")
    todo = _section(page.text, "todo-title")
    assert "Op dit moment niets" not in todo
    assert f"Factuur {number} betalen: € 26,62" in todo  # € 22 + 21% VAT, in Dutch
    assert re.search(r"Te betalen vóór \d{1,2} [a-z]+ 20\d\d", todo)
    assert "op IBAN NL91 ABNA 0417 1643 00 ten name van Stichting CMI" in todo
    assert f"betalingskenmerk {grouped}" in todo
    assert f'href="/mijn/invoices#invoice-{number}"' in page.text
    # The invoices page says the same where the open invoice is listed.
    row = re.search(rf'<tr id="invoice-{re.escape(number)}">(.*?)</tr>',
                    signed_in(site, "cas").get("/mijn/invoices").text, re.S)
    assert row and "NL91 ABNA 0417 1643 00" in row.group(1) and grouped in row.group(1)
    # Someone with nothing to pay and nothing to do is told so.
    assert "Op dit moment niets" in _section(signed_in(site, "bea").get("/mijn").text, "todo-title")


def test_the_certificate_card_says_until_when_and_what_comes_next(site: dict[str, str], harness: Harness) -> None:
    harness.engine.deploy(Actor.system(), PROCESSES, only=["certificate_lifecycle"])
    now = datetime.now(UTC)
    with session_scope() as session:
        session.add(Certificate(id="c-cas", idempotency_key="k-cas", holder="cas", register_number="RL-2026-00007",
                                level="RL", valid_from=date(2026, 12, 2), valid_until=date(2029, 12, 2),
                                status="valid", language="nl", created_at=now))
    harness.engine.start_by_message("certificate_lifecycle", "lifecycle-cas", "certificate_issued", {
        "holder": "cas", "certificate_id": "c-cas", "register_number": "RL-2026-00007",
        "valid_until": "2029-12-02"})
    b = signed_in(site, "cas")
    page = b.get("/mijn")
    card = re.search(r"<article class=\"card\" data-certificate>(.*?)</article>", page.text, re.S)
    assert card, "no certificate card"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", card.group(1)))
    assert "Uw certificaat is geldig tot en met 2 december 2029." in text
    assert "Vier maanden voor die datum nodigen we u uit voor hercertificering." in text
    assert "Registernummer RL-2026-00007" in text
    # No internal key, no waits that contradict each other, no first application offered.
    assert "lifecycle-cas" not in page.text
    assert "wachten tot uw hercertificering" not in page.text
    assert "Eerste certificering aanvragen" not in page.text
    case = re.search(r'<a href="/mijn/cases/([0-9a-f]+)">Uw certificaat</a>', page.text).group(1)
    case_page = b.get(f"/mijn/cases/{case}")
    assert "geldig tot en met 2 december 2029" in case_page.text and "lifecycle-cas" not in case_page.text
    assert "Document toevoegen" not in case_page.text  # nobody assesses this case


def test_a_finished_case_states_its_outcome_and_takes_no_documents(site: dict[str, str], harness: Harness) -> None:
    b = signed_in(site, "cas")
    assert "Eerste certificering aanvragen" in b.get("/mijn").text  # not certified, not applying
    case = apply(b)
    harness.run_jobs()
    assert "Eerste certificering aanvragen" not in b.get("/mijn").text  # the application runs
    assert "Document toevoegen" in b.get(f"/mijn/cases/{case}").text
    olga = Actor("olga", ("office",), True)
    task = next(t for t in harness.engine.inbox(olga) if t.instance_id == case)
    harness.engine.claim(olga, task.id)
    harness.engine.complete(olga, task.id, {"eligible": False, "remarks": "Geen hbo-diploma"})
    harness.run_jobs()
    page = b.get(f"/mijn/cases/{case}")
    assert "Uitkomst" in page.text and "Uw aanvraag is niet toegelaten." in page.text
    assert "Document toevoegen" not in page.text
    # Nor by posting the form anyway (an old tab, a script): refused, nothing stored.
    late = b.client.post(f"/mijn/cases/{case}/documents", data={"csrf_token": b.csrf(f"/mijn/cases/{case}")},
                         files={"file": ("late.pdf", PDF, "application/pdf")})
    assert late.status_code == 409 and "neemt geen documenten meer aan" in late.text
    assert "late.pdf" not in b.get(f"/mijn/cases/{case}").text
    overview = b.get("/mijn")
    assert "Uw aanvraag is niet toegelaten." in overview.text
    assert "Eerste certificering aanvragen" in overview.text  # refused: they may apply again


def test_sending_one_application_twice_starts_one_case(site: dict[str, str]) -> None:
    """The key held the time to the second: a re-post a second later started a second
    certification. The second is refused now, the first case untouched."""
    b = signed_in(site, "cas")
    case = apply(b)
    # Its key (cas:certification) is the page's own bookkeeping, not a reference to show.
    assert "cas:certification" not in b.get("/mijn").text + b.get(f"/mijn/cases/{case}").text
    again = b.post("/mijn/apply", {"submit": "yes", "eligibility_route": "evc",
                                   "motivation": "Ik begeleid al 10 jaar"}, form_page="/mijn/apply")
    assert again.status_code == 409 and "U heeft er al een lopen" in again.text
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 1


def _order_page(b: Browser) -> dict[str, str]:
    check = b.post("/mijn/order", {"step": "1", "product": "book", "quantity": "2"}, form_page="/mijn/order")
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', check.text))
    assert fields["submit"] == "yes" and len(fields["order_token"]) == 16
    return fields


def test_one_order_page_sent_twice_orders_once_but_a_new_order_is_taken(site: dict[str, str]) -> None:
    b = signed_in(site, "cas")
    page = _order_page(b)
    assert b.post("/mijn/order", page, form_page="/mijn/order").status_code == 200
    again = b.post("/mijn/order", page, form_page="/mijn/order")
    assert again.status_code == 409 and "Deze bestelling is al verstuurd" in again.text
    assert b.post("/mijn/order", _order_page(b), form_page="/mijn/order").status_code == 200
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 2


def _to_the_dossier(b: Browser, harness: Harness) -> str:
    """cas applied, was found eligible, paid, and has a mentor: the dossier is cas's to write."""
    from certflow.store.billing import Invoice

    person("mila", ["mentor"])
    case = apply(b)
    harness.run_jobs()
    olga = Actor("olga", ("office",), True)

    def do(element: str, data: dict[str, object]) -> None:
        task = next(t for t in harness.engine.inbox(olga) if t.instance_id == case and t.element_id == element)
        harness.engine.claim(olga, task.id)
        harness.engine.complete(olga, task.id, data)
        harness.run_jobs()

    do("check_eligibility", {"eligible": True, "remarks": "EVC-rapport gezien"})
    with session_scope() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.customer_username == "cas")).one()
        number, amount = invoice.number, str(invoice.gross_total)
    harness.engine.deliver_message(olga, "payment_received", {"amount": amount},
                                   correlation={"invoice_number": number})
    harness.run_jobs()
    do("assign_mentor", {"mentor": "mila"})
    [task] = [t for t in harness.engine.inbox(Actor("cas", ("candidate",))) if t.element_id == "write_dossier"]
    return task.id


def test_a_dossier_is_kept_as_a_draft_until_it_is_sent(site: dict[str, str], harness: Harness) -> None:
    """The dossier takes weeks: "Save draft" keeps what was typed, unchecked and unsent; it
    comes back in the form, is nobody else's to see, and is gone once the dossier is sent."""
    b = signed_in(site, "cas")
    task_id = _to_the_dossier(b, harness)
    page = f"/mijn/tasks/{task_id}"
    form = b.get(page).text
    assert "Concept opslaan" in form and "Versturen" in form
    assert "Ter informatie" not in form  # no feedback yet: nothing to show, not "Feedback —"
    kept = b.post(page, {"knowledge": "Mijn eerste alinea over theorie", "draft": "1"}, follow_redirects=False)
    assert kept.status_code == 303 and kept.headers["location"] == f"{page}?saved=draft"
    back = b.get(f"{page}?saved=draft").text
    assert "Uw concept is opgeslagen" in back and "Dit is uw concept van" in back
    assert "Mijn eerste alinea over theorie" in back  # the form, filled in again
    assert [t.element_id for t in harness.engine.inbox(Actor("cas", ("candidate",)))] == ["write_dossier"]  # unsent
    other = signed_in(site, "bea")
    assert "Mijn eerste alinea" not in other.get(page).text  # not bea's task: refused, nothing shown
    assert other.post(page, {"knowledge": "x", "draft": "1"}, form_page="/mijn").status_code in (403, 404, 409)
    with session_scope() as session:
        from certflow.services import task_drafts

        assert task_drafts.load(session, "bea", task_id) is None
    sent = b.post(page, {"knowledge": "Theorie", "tasks": "Taken", "competences": "Competenties",
                         "hours_spent": "35"}, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    with session_scope() as session:
        assert task_drafts.load(session, "cas", task_id) is None  # sent: the draft is gone
