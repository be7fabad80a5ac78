"""Payments: matching by number or betalingskenmerk, partial and double payments, and the
CAMT.053 import (both versions, re-import, bad files)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import certflow.store.all_models  # noqa: F401  (registers every table)
import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.settings import Settings
from certflow.store.billing import Invoice, Payment
from certflow.store.models import User
from handlers import REGISTRY, HandlerContext
from certflow.services.payments import (
    ImportResult,
    amount_received,
    import_camt053,
    open_payment_issues,
    register_payment,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
LATER = datetime(2026, 3, 6, 19, 0, tzinfo=timezone.utc)
DATA = Path(__file__).resolve().parents[1] / "data"
V02 = (DATA / "camt053_v02.xml").read_bytes()
V08 = (DATA / "camt053_v08.xml").read_bytes()


@pytest.fixture
def invoices(session: Session, tmp_path: Path) -> list[str]:
    """2026-000001 certification 786.50, -000002 recertification 756.25, -000003 book 25.00,
    -000004 register fee 160.93 (what the CAMT fixtures in tests/data expect)."""
    session.add(User(username="jan", display_name="Jan de Vries", email="jan@example.nl",
                     address={"street": "Oudegracht 1", "postal_code": "3511 AA",
                              "city": "Utrecht", "country": "NL"},
                     groups=[], created_at=NOW))
    settings = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    numbers = []
    for product in ("certification", "recertification", "book", "register_fee"):
        ctx = HandlerContext(session=session, now=NOW, idempotency_key=uuid.uuid4().hex,
                             settings=settings)
        params = {"customer": "jan", "product": product}
        numbers.append(REGISTRY["invoicing/create_invoice"](ctx, params)["invoice_number"])
    return numbers


def status_of(session: Session, number: str) -> str:
    return session.scalars(select(Invoice.status).where(Invoice.number == number)).one()


def pay(session: Session, amount: str, external_id: str, **match: Any) -> Any:
    return register_payment(session, LATER, amount=Decimal(amount), source="staff",
                            external_id=external_id, actor="office", **match)


# -- register_payment ------------------------------------------------------------------------
def test_full_payment_by_number_marks_the_invoice_paid(session: Session,
                                                        invoices: list[str]) -> None:
    outcome = pay(session, "786.50", "staff-1", invoice_number="2026-000001")
    assert outcome.status == "matched" and outcome.invoice_paid and not outcome.duplicate
    assert outcome.invoice_number == "2026-000001"
    assert outcome.as_dict()["amount"] == "786.50"
    paid = session.scalars(select(Invoice).where(Invoice.number == "2026-000001")).one()
    assert paid.status == "paid" and paid.paid_at == LATER


def test_reference_is_found_in_free_text(session: Session, invoices: list[str]) -> None:
    outcome = pay(session, "25.00", "staff-2",
                  payment_reference="Boek, betalingskenmerk 0202.6000.0000.0003 dank u")
    assert outcome.status == "matched" and outcome.invoice_number == "2026-000003"
    # A 16-digit number with a wrong check digit is not a kenmerk.
    outcome = pay(session, "160.93", "staff-3", payment_reference="1202600000000004")
    assert outcome.status == "unmatched" and outcome.invoice_number is None


def test_partial_payments_add_up(session: Session, invoices: list[str]) -> None:
    first = pay(session, "500.00", "p-1", invoice_number="2026-000002")
    assert first.status == "partial" and not first.invoice_paid
    assert status_of(session, "2026-000002") == "open"
    assert [p.id for p in open_payment_issues(session)] == [first.payment_id]
    invoice = session.scalars(select(Invoice).where(Invoice.number == "2026-000002")).one()
    assert amount_received(session, invoice) == Decimal("500.00")
    second = pay(session, "256.25", "p-2", invoice_number="2026-000002")
    assert second.status == "matched" and second.invoice_paid
    assert status_of(session, "2026-000002") == "paid"
    assert open_payment_issues(session) == []  # the partial one is resolved with it


def test_duplicate_external_id_changes_nothing(session: Session, invoices: list[str]) -> None:
    first = pay(session, "100.00", "dup-1", invoice_number="2026-000001")
    again = pay(session, "100.00", "dup-1", invoice_number="2026-000001")
    assert again.duplicate and again.payment_id == first.payment_id and not again.invoice_paid
    assert session.scalar(select(func.count()).select_from(Payment)) == 1
    # The same id from another source is another payment.
    assert not register_payment(session, LATER, invoice_number="2026-000001", amount=Decimal(1),
                                source="api", external_id="dup-1", actor="api").duplicate


def test_paying_a_settled_invoice_is_an_issue(session: Session, invoices: list[str]) -> None:
    pay(session, "25.00", "b-1", invoice_number="2026-000003")
    twice = pay(session, "25.00", "b-2", invoice_number="2026-000003")
    assert twice.status == "overpaid" and not twice.invoice_paid
    assert twice.invoice_number == "2026-000003"
    assert [p.external_id for p in open_payment_issues(session)] == ["b-2"]


def test_bad_arguments_are_refused(session: Session, invoices: list[str]) -> None:
    with pytest.raises(ValueError, match="source"):
        register_payment(session, LATER, amount=Decimal(1), source="cash", external_id="x",
                         actor="o")
    with pytest.raises(ValueError, match="amount"):
        pay(session, "0.00", "x")
    with pytest.raises(ValueError, match="amount"):
        pay(session, "1.005", "x")


# -- CAMT.053 --------------------------------------------------------------------------------
def numbers(outcomes: list[Any]) -> list[str | None]:
    return [o.invoice_number for o in outcomes]


def test_camt_v02_import_matches_partial_and_unmatched(session: Session,
                                                       invoices: list[str]) -> None:
    result = import_camt053(session, LATER, V02, actor="office")
    assert numbers(result.matched) == ["2026-000001", "2026-000003"]
    assert numbers(result.partial) == ["2026-000002"]
    assert numbers(result.unmatched) == [None]
    assert result.duplicates == [] and result.overpaid == []
    assert result.paid_invoice_numbers == ["2026-000001", "2026-000003"]
    assert [status_of(session, n) for n in invoices] == ["paid", "open", "paid", "open"]
    unmatched = session.get(Payment, result.unmatched[0].payment_id)
    assert unmatched is not None
    assert (unmatched.payer_name, unmatched.payment_reference, unmatched.booked_date) == (
        "Onbekende Gever", "donatie", date(2026, 3, 5))
    assert unmatched.amount == Decimal("40.00") and unmatched.registered_by == "office"
    # The debit entry (bank costs) is no payment received.
    assert session.scalar(select(func.count()).select_from(Payment)) == 4


def test_importing_the_same_statement_twice_changes_nothing(session: Session,
                                                            invoices: list[str]) -> None:
    import_camt053(session, LATER, V02, actor="office")
    before = session.execute(select(Payment.id, Payment.status, Payment.invoice_id)).all()
    again = import_camt053(session, LATER, V02, actor="office")
    assert len(again.duplicates) == 4
    assert again.matched == again.partial == again.unmatched == []
    assert again.paid_invoice_numbers == []
    assert session.execute(select(Payment.id, Payment.status, Payment.invoice_id)).all() == before


def test_camt_v08_batch_entry_completes_invoices(session: Session, invoices: list[str]) -> None:
    import_camt053(session, LATER, V02, actor="office")
    result = import_camt053(session, LATER, V08, actor="office")
    assert numbers(result.matched) == ["2026-000002", "2026-000004"]
    assert result.paid_invoice_numbers == ["2026-000002", "2026-000004"]
    assert [status_of(session, n) for n in invoices] == ["paid"] * 4
    issues = open_payment_issues(session)
    assert [(p.status, p.payment_reference) for p in issues] == [("unmatched", "donatie")]
    payer = session.get(Payment, result.matched[1].payment_id)
    assert payer is not None and payer.payer_name == "M. Visser"


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<Document><BkToCstmrStmt>", "not well-formed XML"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.02"/>',
         "unsupported document namespace"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><X/></Document>',
         "no Document/BkToCstmrStmt/Stmt"),
        (V02.replace(b"<Amt Ccy=\"EUR\">40.00</Amt>", b"<Amt Ccy=\"EUR\">veertig</Amt>"),
         "entry 4 has an unreadable amount"),
    ],
)
def test_bad_statements_raise_and_write_nothing(session: Session, invoices: list[str],
                                                xml: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        import_camt053(session, LATER, xml, actor="office")
    assert session.scalar(select(func.count()).select_from(Payment)) == 0
    assert [status_of(session, n) for n in invoices] == ["open"] * 4


def test_external_entities_are_not_expanded(session: Session, invoices: list[str]) -> None:
    hostile = V02.replace(
        b'<?xml version="1.0" encoding="UTF-8"?>',
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    ).replace(b"<Ustrd>donatie</Ustrd>", b"<Ustrd>&x;</Ustrd>")
    result: ImportResult = import_camt053(session, LATER, hostile, actor="office")
    stored = session.get(Payment, result.unmatched[0].payment_id)
    assert stored is not None and "root:" not in stored.payment_reference


def _statement(statement_id: str, entries: str) -> bytes:
    return (f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
            f"<Stmt><Id>{statement_id}</Id><Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></Acct>"
            f"{entries}</Stmt></BkToCstmrStmt></Document>").encode()


def _entry(ntry_ref: str, amount: str, text: str, status: str = "BOOK") -> str:
    return (f"<Ntry><NtryRef>{ntry_ref}</NtryRef><Amt Ccy=\"EUR\">{amount}</Amt>"
            f"<CdtDbtInd>CRDT</CdtDbtInd><Sts>{status}</Sts><BookgDt><Dt>2026-03-09</Dt></BookgDt>"
            f"<NtryDtls><TxDtls><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")


def test_entry_refs_are_qualified_by_statement(session: Session, invoices: list[str]) -> None:
    """Without AcctSvcrRef, NtryRef "1" on two statements are two payments; the same
    statement again is a duplicate; pending entries are not payments yet."""
    monday = _statement("S-0309", _entry("1", "786.50", "2026-000001")
                        + _entry("2", "5.00", "x", status="PDNG"))
    tuesday = _statement("S-0310", _entry("1", "25.00", "2026-000003"))
    assert len(import_camt053(session, LATER, monday, actor="office").matched) == 1
    assert len(import_camt053(session, LATER, tuesday, actor="office").matched) == 1
    assert len(import_camt053(session, LATER, monday, actor="office").duplicates) == 1
    assert session.scalar(select(func.count()).select_from(Payment)) == 2
