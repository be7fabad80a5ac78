"""Payments, invoices, certificates and the public Register through the API, driving the real
certification process: a payment reported by API or read from a CAMT.053 statement moves the
waiting application on; a repeat moves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import func, select

from certflow.store.billing import Payment
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent
from certflow.services.payments import register_payment
from tests.support import ROOT
from tests.web.test_api import Api, serving

CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
XML = {"Content-Type": "application/xml"}
DOSSIER = {"knowledge": "Theorie", "tasks": "Begeleiding", "competences": "Coaching", "hours_spent": 35}


@pytest.fixture
def web(sqlite_url: str) -> Iterator[Api]:
    """The app with the processes deployed."""
    with serving() as api:
        api.deploy()
        yield api


def invoiced(api: Api, who: str = "cas", key: str = "APP-1") -> tuple[str, dict[str, Any]]:
    """An application through eligibility: (instance id, its invoice as the API shows it)."""
    instance_id = api.apply(who, key)
    api.do("olga", "check_eligibility", {"eligible": True, "remarks": "diploma gezien"})
    number = api.get(f"/api/instances/{instance_id}", "olga").json()["data"]["invoice_number"]
    invoice = api.get(f"/api/invoices/{number}", who)
    assert invoice.status_code == 200, invoice.text
    return instance_id, invoice.json()


def open_tasks(api: Api, instance_id: str) -> list[str]:
    return [t["element_id"] for t in api.get(f"/api/instances/{instance_id}", "olga").json()["open_tasks"]]


def messages_received(instance_id: str) -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == instance_id, AuditEvent.action == "message_received")) or 0)


def payments() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Payment)) or 0)


def statement(lines: list[tuple[str, str, str]], statement_id: str = "STMT-1") -> bytes:
    """A CAMT.053 v08 statement from tests/data's one: one batch entry, one transfer per
    (bank reference, amount, structured reference or "text:<free text>")."""
    root = etree.fromstring((ROOT / "tests" / "data" / "camt053_v08.xml").read_bytes())
    ns = {"c": CAMT}
    root.find("c:BkToCstmrStmt/c:Stmt/c:Id", ns).text = statement_id
    details = root.find(".//c:NtryDtls", ns)
    template = details.find("c:TxDtls[2]", ns)
    for tx in details.findall("c:TxDtls", ns):
        details.remove(tx)
    for ref, amount, remittance in lines:
        tx = etree.fromstring(etree.tostring(template))
        tx.find("c:Refs/c:AcctSvcrRef", ns).text = ref
        tx.find("c:Amt", ns).text = amount
        if remittance.startswith("text:"):
            info = tx.find("c:RmtInf", ns)
            info.remove(info.find("c:Strd", ns))
            etree.SubElement(info, f"{{{CAMT}}}Ustrd").text = remittance[5:]
        else:
            tx.find(".//c:CdtrRefInf/c:Ref", ns).text = remittance
        details.append(tx)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# -- invoices --------------------------------------------------------------------------------
def test_invoice_json_and_documents_for_the_customer_and_staff_only(web: Api) -> None:
    _, invoice = invoiced(web)
    number = invoice["number"]
    assert (invoice["net_total"], invoice["vat_total"], invoice["gross_total"]) == ("650.00", "136.50", "786.50")
    assert invoice["status"] == "open" and invoice["customer"] == "cas"
    assert [(ln["product"], ln["quantity"], ln["vat_rate"]) for ln in invoice["lines"]] == [("certification", 1, "21.00")]
    assert web.get(f"/api/invoices/{number}", "olga").status_code == 200
    assert web.get(f"/api/invoices/{number}", "ann").status_code == 403
    assert web.get("/api/invoices/1999-999999", "olga").status_code == 404
    pdf = web.get(f"/api/invoices/{number}/pdf", "cas")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    ubl = web.get(f"/api/invoices/{number}/ubl", "cas")
    assert ubl.status_code == 200 and ubl.headers["content-type"].startswith("application/xml")
    assert number.encode() in ubl.content and b"<Invoice" in ubl.content
    for path in ("pdf", "ubl"):
        assert web.get(f"/api/invoices/{number}/{path}", "ann").status_code == 403
        assert web.get(f"/api/invoices/{number}/{path}", None).status_code == 403


# -- POST /api/payments -------------------------------------------------------------------------
def test_api_payment_moves_the_application_on_once(web: Api) -> None:
    instance_id, invoice = invoiced(web)
    body = {"invoice_number": invoice["number"], "amount": "786.50", "external_id": "psp-1"}
    assert web.post("/api/payments", "cas", body).status_code == 403
    paid = web.post("/api/payments", "olga", body)
    assert paid.status_code == 201, paid.text
    result = paid.json()
    assert result["payment"]["status"] == "matched" and result["payment"]["invoice_paid"]
    assert (result["delivered"], result["instances"]) == (True, [instance_id])
    web.h.run_jobs()
    assert open_tasks(web, instance_id) == ["assign_mentor"]
    assert web.get(f"/api/invoices/{invoice['number']}", "cas").json()["status"] == "paid"
    repeat = web.post("/api/payments", "olga", body)
    assert repeat.status_code == 200
    assert repeat.json()["payment"]["duplicate"] and repeat.json()["delivered"] is False
    assert repeat.json()["payment"]["payment_id"] == result["payment"]["payment_id"]
    assert (payments(), messages_received(instance_id)) == (1, 1)
    assert open_tasks(web, instance_id) == ["assign_mentor"]


def test_a_retry_delivers_what_a_crashed_first_call_committed_but_never_delivered(web: Api) -> None:
    instance_id, invoice = invoiced(web)
    with session_scope() as s:  # the first call: committed, then died before delivering
        register_payment(s, web.engine.now(), invoice_number=invoice["number"],
                         amount=Decimal("786.50"), source="api", external_id="psp-9", actor="olga")
    assert open_tasks(web, instance_id) == []
    retry = web.post("/api/payments", "olga", {"invoice_number": invoice["number"],
                                                    "amount": "786.50", "external_id": "psp-9"})
    assert retry.status_code == 200 and retry.json()["payment"]["duplicate"]
    assert retry.json()["delivered"] is True
    web.h.run_jobs()
    assert open_tasks(web, instance_id) == ["assign_mentor"]
    assert (payments(), messages_received(instance_id)) == (1, 1)


@pytest.mark.parametrize("change, field", [
    ({"amount": "12.345"}, "amount"), ({"amount": 786.5}, "amount"), ({"amount": "-1.00"}, "amount"),
    ({"amount": "abc"}, "amount"), ({"amount": "1e30"}, "amount"), ({"amount": "NaN"}, "amount"),
    ({"amount": "0.00"}, "amount"), ({"external_id": ""}, "external_id"), ({"invoice_number": None}, "body"),
    ({"currency": "euro"}, "currency"), ({"surprise": 1}, "surprise"),
])
def test_bad_payment_input_is_refused_and_writes_nothing(web: Api, change: dict[str, Any], field: str) -> None:
    body = {"invoice_number": "2026-000001", "amount": "786.50", "external_id": "x-1", **change}
    response = web.post("/api/payments", "olga", body)
    assert response.status_code == 422, response.text
    assert field in response.json()["fields"]
    assert payments() == 0


def test_partial_then_rest_and_a_payment_nobody_waits_for(web: Api) -> None:
    instance_id, invoice = invoiced(web)
    number = invoice["number"]
    part = web.post("/api/payments", "olga", {"invoice_number": number, "amount": "86.50", "external_id": "p-1"})
    assert part.json()["payment"]["status"] == "partial" and part.json()["delivered"] is False
    assert "partial" in part.json()["reason"]
    assert [p["status"] for p in web.get("/api/payments/issues", "olga").json()] == ["partial"]
    rest = web.post("/api/payments", "olga", {"payment_reference": invoice["payment_reference"],
                                                   "amount": "700.00", "external_id": "p-2"}).json()
    assert rest["payment"]["status"] == "matched" and rest["delivered"] is True
    assert web.get("/api/payments/issues", "olga").json() == []
    web.h.run_jobs()
    assert open_tasks(web, instance_id) == ["assign_mentor"]
    # A second application, cancelled before it is paid: the money still counts.
    other, second = invoiced(web, "ann", "APP-2")
    assert web.post(f"/api/instances/{other}/cancel", "olga").status_code == 200
    late = web.post("/api/payments", "olga", {"invoice_number": second["number"], "amount": "786.50",
                                                   "external_id": "p-3"})
    assert late.status_code == 201 and late.json()["payment"]["status"] == "matched"
    # Nobody waits (the application was cancelled): kept for a while, never delivered (issue 10).
    assert late.json()["delivered"] is False and late.json()["buffered"] is True
    assert web.get(f"/api/invoices/{second['number']}", "ann").json()["status"] == "paid"


# -- CAMT.053 ----------------------------------------------------------------------------------
def test_camt053_import_moves_the_matched_application_and_reimport_changes_nothing(web: Api) -> None:
    first, _ = invoiced(web, "cas", "APP-1")
    second, invoice = invoiced(web, "ann", "APP-2")
    xml = statement([("TX-1", invoice["gross_total"], invoice["payment_reference"]),
                     ("TX-2", "12.34", "text:gift without any reference")])
    assert web.post("/api/payments/camt053", "cas", content=xml, headers=XML).status_code == 403
    imported = web.post("/api/payments/camt053", "olga", content=xml, headers=XML)
    assert imported.status_code == 200, imported.text
    result = imported.json()
    assert result["counts"] == {"matched": 1, "partial": 0, "overpaid": 0, "unmatched": 1, "duplicates": 0}
    assert [m["invoice_number"] for m in result["matched"]] == [invoice["number"]]
    assert result["deliveries"] == [{"invoice_number": invoice["number"], "delivered": True, "instances": [second]}]
    web.h.run_jobs()
    assert open_tasks(web, second) == ["assign_mentor"]
    assert open_tasks(web, first) == []  # still waiting for its own payment
    again = web.post("/api/payments/camt053", "olga", content=xml, headers=XML).json()
    assert again["counts"] == {"matched": 0, "partial": 0, "overpaid": 0, "unmatched": 0, "duplicates": 2}
    assert not any(d["delivered"] for d in again["deliveries"])
    web.h.run_jobs()
    assert (payments(), messages_received(second), open_tasks(web, second)) == (2, 1, ["assign_mentor"])
    [issue] = web.get("/api/payments/issues", "olga").json()
    assert (issue["status"], issue["amount"], issue["source"]) == ("unmatched", "12.34", "camt")
    assert web.get("/api/payments/issues", "cas").status_code == 403


@pytest.mark.parametrize("body, headers, status, words", [
    (b"<Document><unclosed></Document>", XML, 422, "not well-formed XML"),
    (b"<Document xmlns='urn:other'/>", XML, 422, "unsupported document namespace"),
    (b"", XML, 422, "empty"),
    (b"<x/>", {"Content-Type": "application/json"}, 415, "application/xml"),
    (b" " * (5 * 1024 * 1024 + 1), XML, 413, "larger than 5 MB"),
])
def test_bad_statements_are_refused_clearly_and_write_nothing(
        web: Api, body: bytes, headers: dict[str, str], status: int, words: str) -> None:
    response = web.post("/api/payments/camt053", "olga", content=body, headers=headers)
    assert response.status_code == status
    assert words in response.json()["error"]
    assert payments() == 0


def test_an_oversized_statement_without_length_is_cut_off(web: Api) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(6):
            yield b" " * (1024 * 1024)

    response = web.post("/api/payments/camt053", "olga", content=chunks(), headers=XML)
    assert response.status_code == 413 and "larger than 5 MB" in response.json()["error"]


def test_a_statement_with_one_bad_line_writes_nothing(web: Api) -> None:
    xml = statement([("TX-1", "10.00", "text:ok"), ("TX-2", "1.001", "text:bad amount")])
    response = web.post("/api/payments/camt053", "olga", content=xml, headers=XML)
    assert response.status_code == 422 and "invalid amount" in response.json()["error"]
    assert payments() == 0


# -- certificates and the public register --------------------------------------------------------
@pytest.fixture
def granted(web: Api) -> Api:
    web.person("kees", ["committee"])
    web.person("cato", ["certifier"], staff=True)
    _, invoice = invoiced(web)
    body = {"invoice_number": invoice["number"], "amount": invoice["gross_total"], "external_id": "g-1"}
    assert web.post("/api/payments", "olga", body).json()["delivered"] is True
    web.h.run_jobs()
    web.do("olga", "assign_mentor", {"mentor": "mila"})
    web.do("cas", "write_dossier", DOSSIER)
    web.do("mila", "review_dossier", {"approved": True, "feedback": "Goed"})
    web.do("kees", "oral_assessment", {"advice": "positive", "notes": "Overtuigend"})
    web.do("cato", "decide_certification", {"granted": True, "reason": "Voldoet"})
    return web


def test_certificate_list_and_download(granted: Api) -> None:
    [cert] = granted.get("/api/certificates", "cas").json()
    assert cert["holder"] == "cas" and cert["register_number"].startswith("RL-") and cert["status"] == "valid"
    assert cert["languages"] == ["nl"]
    assert granted.get("/api/certificates", "ann").json() == []
    assert granted.get("/api/certificates?holder=cas", "ann").status_code == 403
    assert [c["id"] for c in granted.get("/api/certificates?holder=cas", "olga").json()] == [cert["id"]]
    pdf = granted.get(f"/api/certificates/{cert['id']}/pdf", "cas")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert granted.get(f"/api/certificates/{cert['id']}/pdf", "olga").status_code == 200
    assert granted.get(f"/api/certificates/{cert['id']}/pdf", "ann").status_code == 403
    english = granted.get(f"/api/certificates/{cert['id']}/pdf?language=en", "cas")
    assert english.status_code == 404 and "no en copy" in english.json()["error"]
    assert granted.get(f"/api/certificates/{cert['id']}/pdf?language=fr", "cas").status_code == 422
    assert granted.get("/api/certificates/nope/pdf", "cas").status_code == 404


def test_public_register_shows_only_what_gdpr_allows(granted: Api) -> None:
    [cert] = granted.get("/api/certificates", "cas").json()
    everyone = granted.client.get("/public/register")
    assert everyone.status_code == 200
    [entry] = everyone.json()
    assert set(entry) == {"name", "register_number", "status", "level", "specialisation",
                          "valid_until"}
    assert entry == {"name": "Cas Achternaam", "register_number": cert["register_number"],
                     "status": "valid", "level": "RL", "specialisation": None,
                     "valid_until": cert["valid_until"]}
    assert granted.client.get("/public/register", params={"q": cert["register_number"]}).json() == [entry]
    assert granted.client.get("/public/register", params={"q": "cas achter"}).json() == [entry]
    assert granted.client.get("/public/register", params={"q": "ann"}).json() == []
    assert granted.client.get("/public/register", params={"q": "%"}).json() == []
    assert granted.client.get("/public/register", params={"q": "x" * 101}).status_code == 422
