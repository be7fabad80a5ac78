"""The office's payments page (in-process browser), as a clerk uses it every day: a real
CAMT.053 statement imported pays the invoice a certification waits on and moves it on, and
says in Dutch what each line did; a statement imported twice, or a bad file, changes nothing;
a payment registered by hand and posted twice is registered once; an unmatched payment linked
to its invoice pays it and tells the process; a handled payment leaves the queue (and the
API's). Payer names and amounts are for the staff who see case data only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

import certflow.bootstrap
from certflow.bootstrap import build_engine
from certflow.engine.facade import Actor
from certflow.store.billing import Invoice, Payment
from certflow.store.db import session_scope
from certflow.web.pages.payments import parse_amount, parse_day
from tests.processes.driver import PROCESSES
from tests.support import Harness
from tests.web.pages_support import ADDRESS, Browser, csrf_of, person
from tests.services.test_camt_rules import entry, statement as camt_v02
from tests.web.test_records_api import messages_received, statement

PEOPLE = {"olga": (["office"], True), "cor": (["coordinator"], True), "mo": (["office_manager"], True),
          "adam": (["admin"], True), "pia": (["process_owner"], True), "mila": (["mentor"], False),
          "ada": (["assessor"], False), "cas": (["candidate"], False), "bea": (["candidate"], False)}
OFFICE = Actor("olga", ("office",), True)


@pytest.fixture
def h(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    harness = Harness(build_engine())
    # The pages (and the API) ask certflow.bootstrap for the process's engine: this test's.
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: harness.engine)
    harness.engine.deploy(Actor.system(), PROCESSES, only=["certification"])
    for who, (roles, staff) in PEOPLE.items():
        person(who, roles, staff=staff, token=f"token-{who}", **({"address": ADDRESS} if "candidate" in roles else {}))
    yield harness


def signed_in(who: str) -> Browser:
    b = Browser()
    b.sign_in(f"{who}@example.org")
    return b


def invoiced(h: Harness, who: str = "cas") -> tuple[str, str, str]:
    """``who``'s application through eligibility, waiting for its payment: (instance id,
    invoice number, payment reference)."""
    view = h.engine.start(Actor(who, ("candidate",)), "certification", f"APP-{who}",
                          {"candidate": who, "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    h.run_jobs()
    [task] = [t for t in h.engine.inbox(OFFICE) if t.instance_id == view.id]
    h.engine.claim(OFFICE, task.id)
    h.engine.complete(OFFICE, task.id, {"eligible": True, "remarks": "diploma gezien"})
    h.run_jobs()
    number = str(h.engine.instance(OFFICE, view.id).data["invoice_number"])
    with session_scope() as s:
        reference = s.scalar(select(Invoice.payment_reference).where(Invoice.number == number))
    return view.id, number, str(reference)


def transfer(amount: str, text: str, ref: str) -> bytes:
    """A statement of one transfer (camt.053.001.02, as most Dutch banks export)."""
    return camt_v02(entry(amount, text, ref=ref))


def open_tasks(h: Harness, instance_id: str) -> list[str]:
    return [t.element_id for t in h.engine.instance(OFFICE, instance_id).open_tasks]


def payments() -> list[tuple[str, Decimal, str | None]]:
    """Every payment: (status, amount, handled_by)."""
    with session_scope() as s:
        return [(p.status, p.amount, p.handled_by) for p in s.scalars(select(Payment).order_by(Payment.id))]


def invoice_status(number: str) -> str:
    with session_scope() as s:
        return str(s.scalar(select(Invoice.status).where(Invoice.number == number)))


def upload(b: Browser, content: bytes, filename: str = "afschrift.xml", **kw: object):  # type: ignore[no-untyped-def]
    token = csrf_of(b.get("/payments").text)
    return b.client.post("/payments/import", data={"csrf_token": token},
                         files={"statement": (filename, content, "application/xml")}, **kw)


def text_of(html: str) -> str:
    """The page's main content as a reader sees it: tags dropped, whitespace folded."""
    main = html.split('<main', 1)[1].split("</main>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", main).replace("&nbsp;", " ").split())


def queue_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="payment-(\d+)"', html)]


# -- who ---------------------------------------------------------------------------------------
def test_the_staff_who_see_case_data_use_it_and_nobody_else(h: Harness) -> None:
    for who in ("olga", "cor", "mo", "adam"):
        page = signed_in(who).get("/payments")
        assert page.status_code == 200, who
        assert '<a href="/payments" aria-current="page">Betalingen</a>' in page.text
        assert "<h1>Betalingen</h1>" in page.text
    for who in ("pia", "mila", "ada", "cas"):
        b = signed_in(who)
        assert b.get("/payments").status_code == 403, who
        assert b.get("/payments/new").status_code == 403, who
        assert 'href="/payments"' not in b.get("/account").text, who
    anonymous = Browser().get("/payments", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/sign-in?next=/payments")
    assert payments() == []


def test_a_process_owner_posting_a_statement_writes_nothing(h: Harness) -> None:
    pia = signed_in("pia")
    token = csrf_of(pia.get("/account").text)
    refused = pia.client.post("/payments/import", data={"csrf_token": token},
                              files={"statement": ("a.xml", statement([("TX-1", "10.00", "text:x")]), "application/xml")})
    assert refused.status_code == 403 and payments() == []


# -- importing ---------------------------------------------------------------------------------
def test_an_imported_statement_pays_the_invoice_and_moves_the_certification_on(h: Harness) -> None:
    cas_case, cas_invoice, cas_reference = invoiced(h, "cas")
    bea_case, bea_invoice, _ = invoiced(h, "bea")
    xml = statement([("TX-1", "786.50", cas_reference), ("TX-2", "12.34", "text:gift without any reference"),
                     ("TX-3", "300.00", f"text:factuur {bea_invoice} deel 1")])
    olga = signed_in("olga")
    imported = upload(olga, xml)
    assert imported.status_code == 200, imported.text
    said = text_of(imported.text)
    assert "Afschrift ingelezen: afschrift.xml" in said
    assert "1 heeft een factuur betaald 1 heeft een deel van een factuur betaald 0 heeft te veel betaald " \
           "1 niet herkend 0 al eerder ingelezen" in said
    assert f"Factuur {cas_invoice} (Cas Tester) is betaald. Het proces dat op deze betaling wachtte, is bericht en gaat verder." in said
    assert f"Deel van factuur {bea_invoice}: € 300,00 van € 786,50 ontvangen; € 486,50 moet nog komen." in said
    assert "Geen factuurnummer of betalingskenmerk herkend" in said
    assert f'href="/monitor/instances/{cas_case}"' in imported.text
    h.run_jobs()
    assert open_tasks(h, cas_case) == ["assign_mentor"]
    assert open_tasks(h, bea_case) == []  # still waiting for the rest
    assert invoice_status(cas_invoice) == "paid" and invoice_status(bea_invoice) == "open"
    queue = olga.get("/payments").text
    assert len(queue_ids(queue)) == 2
    listed = text_of(queue)
    assert "€ 12,34" in listed and "gift without any reference" in listed and "Niet herkend" in listed
    assert "Deelbetaling" in listed and "€ 300,00 van € 786,50 ontvangen" in listed
    assert f'href="/payments/invoices/{bea_invoice}/pdf"' in queue
    pdf = olga.get(f"/payments/invoices/{bea_invoice}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    again = upload(olga, xml)
    assert again.status_code == 200
    said = text_of(again.text)
    assert "Dit afschrift was al eerder ingelezen: er is niets veranderd." in said
    assert "3 al eerder ingelezen" in said
    h.run_jobs()
    assert len(payments()) == 3 and messages_received(cas_case) == 1


@pytest.mark.parametrize("content, status, words", [
    (b"%PDF-1.4 this is the bank's PDF", 422, "Dit bestand is geen XML"),
    (b"<?xml version='1.0'?><Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.03'/>", 422,
     "is geen CAMT.053-bankafschrift"),
    (b"   \n", 422, "Het bestand is leeg"),
    (b" " * (5 * 1024 * 1024 + 1), 413, "groter dan 5 MB"),
    (statement([("TX-1", "10.00", "text:ok"), ("TX-2", "1.001", "text:bad amount")]), 422,
     "Het afschrift kon niet worden gelezen"),
])
def test_a_bad_statement_is_refused_next_to_the_field_and_changes_nothing(
        h: Harness, content: bytes, status: int, words: str) -> None:
    olga = signed_in("olga")
    refused = upload(olga, content)
    assert refused.status_code == status
    assert 'id="statement-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert "Er is een probleem" in refused.text and 'href="#statement"' in refused.text  # the summary
    assert words in text_of(refused.text)
    assert payments() == []


def test_no_file_chosen_says_so(h: Harness) -> None:
    olga = signed_in("olga")
    token = csrf_of(olga.get("/payments").text)
    refused = olga.client.post("/payments/import", data={"csrf_token": token},
                               files={"statement": ("", b"", "application/octet-stream")})
    assert refused.status_code == 422 and "Kies het bankafschrift" in text_of(refused.text)


def test_the_upload_needs_the_csrf_token(h: Harness) -> None:
    olga = signed_in("olga")
    refused = olga.client.post("/payments/import", files={"statement": ("a.xml", statement([("TX-1", "10.00", "text:x")]))})
    assert refused.status_code == 403 and payments() == []


# -- by hand -----------------------------------------------------------------------------------
def test_a_payment_by_hand_posted_twice_is_registered_once(h: Harness) -> None:
    case, number, _ = invoiced(h)
    olga = signed_in("olga")
    form = olga.get("/payments/new").text
    token = re.search(r'name="payment_token" value="([0-9a-f]{16})"', form)
    assert token, form
    body = {"invoice": number, "amount": "786,50", "booked_date": "2026-01-05", "payer_name": "C. Tester",
            "payment_token": token.group(1)}
    first = olga.post("/payments/new", body, form_page="/payments/new")
    assert first.status_code == 200, first.text
    said = text_of(first.text)
    assert f"De betaling van € 786,50 is geregistreerd voor factuur {number} (Cas Tester)." in said
    assert "is bericht en gaat verder" in said
    second = olga.post("/payments/new", body, form_page="/payments/new")
    assert second.status_code == 200
    assert "Deze betaling was al geregistreerd; er is niets dubbel geregistreerd." in text_of(second.text)
    assert "proces" not in text_of(second.text).split("Te bekijken")[0]  # nobody is told twice
    h.run_jobs()
    assert payments() == [("matched", Decimal("786.50"), None)]
    assert messages_received(case) == 1 and open_tasks(h, case) == ["assign_mentor"]
    # A new form is a new payment: its token is another.
    assert token.group(1) not in olga.get("/payments/new").text


@pytest.mark.parametrize("change, field, words", [
    ({"amount": "786,505"}, "amount", "Vul een bedrag in euro en cent in"),
    ({"amount": ""}, "amount", "Vul het bedrag in euro in"),
    ({"invoice": "2026-999999"}, "invoice", "Geen factuur heeft dit nummer of betalingskenmerk"),
    ({"invoice": ""}, "invoice", "Vul het factuurnummer"),
    ({"booked_date": "2999-01-01"}, "booked_date", "kan niet in de toekomst liggen"),
    ({"booked_date": "gisteren"}, "booked_date", "Vul de datum in waarop het geld binnenkwam"),
])
def test_a_payment_by_hand_with_a_mistake_is_refused_per_field(
        h: Harness, change: dict[str, str], field: str, words: str) -> None:
    _, number, _ = invoiced(h)
    olga = signed_in("olga")
    body = {"invoice": number, "amount": "786.50", "booked_date": "5-1-2026", "payer_name": "",
            "payment_token": "0123456789abcdef", **change}
    refused = olga.post("/payments/new", body, form_page="/payments/new")
    assert refused.status_code == 422
    assert f'id="{field}-error"' in refused.text and f'href="#{field}"' in refused.text
    assert words in text_of(refused.text)
    assert 'value="0123456789abcdef"' in refused.text  # the same form: the same payment
    assert payments() == []


def test_a_payment_by_hand_by_its_payment_reference(h: Harness) -> None:
    case, number, reference = invoiced(h)
    grouped = " ".join(reference[i:i + 4] for i in range(0, 16, 4))
    done = signed_in("olga").post("/payments/new", {"invoice": grouped, "amount": "786.50", "booked_date": "2026-01-05",
                                                    "payer_name": "", "payment_token": "00000000000000aa"},
                                  form_page="/payments/new")
    assert done.status_code == 200 and f"geregistreerd voor factuur {number}" in text_of(done.text)
    assert invoice_status(number) == "paid"


# -- the queue: link, handle -------------------------------------------------------------------
def test_linking_an_unmatched_payment_pays_the_invoice_and_tells_the_process(h: Harness) -> None:
    case, number, _ = invoiced(h)
    olga = signed_in("olga")
    upload(olga, transfer("786.50", "inschrijving C Tester", "TX-9"))
    [payment_id] = queue_ids(olga.get("/payments").text)
    page = olga.get(f"/payments/{payment_id}")
    assert page.status_code == 200 and "Koppelen aan een factuur" in page.text
    wrong = olga.post(f"/payments/{payment_id}/link", {"invoice_number": "2026-999999"}, form_page=f"/payments/{payment_id}")
    assert wrong.status_code == 422 and 'id="invoice_number-error"' in wrong.text
    assert "Er is geen factuur 2026-999999" in text_of(wrong.text)
    assert invoice_status(number) == "open" and payments()[0][0] == "unmatched"

    linked = olga.post(f"/payments/{payment_id}/link", {"invoice_number": number}, form_page=f"/payments/{payment_id}")
    assert linked.status_code == 200, linked.text
    said = text_of(linked.text)
    assert f"De betaling van € 786,50 is gekoppeld aan factuur {number} (Cas Tester)." in said
    assert f"Factuur {number} is betaald." in said and "is bericht en gaat verder" in said
    assert queue_ids(linked.text) == []
    h.run_jobs()
    assert invoice_status(number) == "paid" and open_tasks(h, case) == ["assign_mentor"]
    assert messages_received(case) == 1
    again = olga.post(f"/payments/{payment_id}/link", {"invoice_number": number}, form_page=f"/payments/{payment_id}")
    assert again.status_code == 409 and "wacht niet meer op een factuur" in text_of(again.text)
    detail = text_of(olga.get(f"/payments/{payment_id}").text)
    assert "Gekoppeld aan de factuur door olga" in detail
    assert messages_received(case) == 1


def test_a_handled_payment_leaves_the_queue_and_the_api(h: Harness) -> None:
    olga = signed_in("olga")
    upload(olga, transfer("50.00", "voor de vereniging", "TX-7"))
    [payment_id] = queue_ids(olga.get("/payments").text)
    form = f"/payments/{payment_id}"
    empty = olga.post(f"{form}/handled", {"note": "  "}, form_page=form)
    assert empty.status_code == 422 and 'id="note-error"' in empty.text
    assert "Zeg wat er is gedaan" in text_of(empty.text)
    api = olga.client.get("/api/payments/issues", headers={"Authorization": "Bearer token-olga"})
    assert [p["id"] for p in api.json()] == [payment_id]

    done = olga.post(f"{form}/handled", {"note": "Teruggestort, was voor Noloc"}, form_page=form)
    assert done.status_code == 200
    assert "is afgehandeld en staat niet meer in de lijst" in text_of(done.text)
    assert queue_ids(done.text) == [] and queue_ids(olga.get("/payments").text) == []
    assert olga.client.get("/api/payments/issues", headers={"Authorization": "Bearer token-olga"}).json() == []
    assert payments() == [("unmatched", Decimal("50.00"), "olga")]
    detail = olga.get(form).text
    assert "Teruggestort, was voor Noloc" in detail and f'action="{form}/handled"' not in detail
    twice = olga.post(f"{form}/handled", {"note": "nog eens"}, form_page="/payments")
    assert twice.status_code == 409 and payments() == [("unmatched", Decimal("50.00"), "olga")]


def test_another_role_cannot_link_or_handle(h: Harness) -> None:
    olga = signed_in("olga")
    upload(olga, transfer("10.00", "?", "TX-5"))
    [payment_id] = queue_ids(olga.get("/payments").text)
    pia = signed_in("pia")
    token = csrf_of(pia.get("/account").text)
    for action, body in (("link", {"invoice_number": "2026-000001"}), ("handled", {"note": "weg"})):
        refused = pia.client.post(f"/payments/{payment_id}/{action}", data={**body, "csrf_token": token})
        assert refused.status_code == 403
    assert pia.get(f"/payments/{payment_id}").status_code == 403
    assert payments() == [("unmatched", Decimal("10.00"), None)]
    assert olga.get("/payments/999999").status_code == 404


# -- reading what the clerk typed -----------------------------------------------------------------
@pytest.mark.parametrize("typed, amount", [
    ("786,50", "786.50"), ("786.50", "786.50"), ("€ 786,50", "786.50"), ("1.234,56", "1234.56"),
    ("1,234.56", "1234.56"), ("1234", "1234.00"), ("1.234", "1234.00"), ("12,5", "12.50"),
    ("786,505", None), ("1,234", None), ("1.234.56", None), ("0,00", None), ("-5", None), ("abc", None), ("", None),
    ("٣", None), ("²", None), ("1e309", None), ("NaN", None),
])
def test_amounts_as_typed(typed: str, amount: str | None) -> None:
    assert parse_amount(typed) == (Decimal(amount) if amount else None)


def test_dates_as_typed() -> None:
    from datetime import date

    assert parse_day("2026-03-15") == parse_day("15-3-2026") == parse_day("15/03/2026") == date(2026, 3, 15)
    assert parse_day("31-2-2026") is None and parse_day("morgen") is None and parse_day("٣-٣-٢٠٢٦") is None


def test_nothing_is_written_by_merely_looking(h: Harness) -> None:
    signed_in("olga").get("/payments/new")
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Payment)) == 0


def test_a_hand_payment_whose_form_lost_its_token_is_still_registered_once(h: Harness) -> None:
    """A form from elsewhere (an old tab, a bookmark of the post): the payment is what it says,
    so sending it twice still registers it once; a different one is another payment."""
    _, number, _ = invoiced(h)
    olga = signed_in("olga")
    body = {"invoice": number, "amount": "300,00", "booked_date": "5-1-2026", "payer_name": "C. Tester"}
    for _ in range(2):
        assert olga.post("/payments/new", body, form_page="/payments/new").status_code == 200
    assert olga.post("/payments/new", {**body, "amount": "200,00"}, form_page="/payments/new").status_code == 200
    assert payments() == [("partial", Decimal("300.00"), None), ("partial", Decimal("200.00"), None)]


def test_an_english_clerk_reads_it_in_english(h: Harness) -> None:
    _, number, _ = invoiced(h)
    person("edna", ["office"], staff=True, language="en")
    edna = signed_in("edna")
    upload(edna, transfer("300.00", f"factuur {number}", "TX-EN"))
    said = text_of(edna.get("/payments").text)
    assert "Payments to look at (1)" in said and "Partial payment" in said
    assert "€300.00 of €786.50 received" in said
