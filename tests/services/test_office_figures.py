"""The dashboard's money and register figures on constructed rows: which invoices count as
unpaid and overdue (and their exact sum), which certificates expire within four months."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.engine.facade import Actor
from certflow.errors import Forbidden
from certflow.services import office_figures as figures
from certflow.store.billing import Invoice
from certflow.store.db import session_scope
from certflow.store.register import Certificate, RegisterEntry
from tests.support import create_user

TODAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
STAFF = Actor("olga", ("office",), True)


def _invoice(seq: int, gross: str, due: date, kind: str = "invoice", status: str = "open") -> Invoice:
    return Invoice(idempotency_key=f"k{seq}", number=f"2026-{seq:06d}", year=2026, seq=seq, kind=kind,
                   customer_username="cas", customer_name="Cas", customer_address={}, issue_date=TODAY,
                   supply_date=TODAY, due_date=due, description="Eerste certificering", net_total=Decimal(gross),
                   vat_total=Decimal("0.00"), gross_total=Decimal(gross), payment_reference=f"{seq:016d}",
                   status=status, created_at=NOW)


def _entry(session: Session, holder: str, until: date, status: str = "valid") -> None:
    create_user(session, holder, holder.title(), ["professional"])
    cert = Certificate(idempotency_key=holder, holder=holder, register_number=f"RL-{holder}", valid_from=date(2023, 1, 1),
                       valid_until=until, status=status, created_at=NOW)
    session.add(cert)
    session.flush()
    session.add(RegisterEntry(holder=holder, register_number=cert.register_number,
                              certificate_id=cert.id, status=status, valid_until=until, updated_at=NOW))


def test_unpaid_and_overdue_invoices(sqlite_url: str) -> None:
    with session_scope() as s:
        create_user(s, "cas", "Cas", ["candidate"])
        s.add_all([_invoice(1, "786.50", date(2026, 11, 1)), _invoice(2, "0.10", date(2026, 12, 14)),
                   _invoice(3, "0.20", date(2026, 12, 30)), _invoice(4, "100.00", date(2026, 1, 1), status="paid"),
                   _invoice(5, "-50.00", date(2026, 1, 1), kind="credit_note")])
    with session_scope() as s:
        owed = figures.receivables(s, STAFF, TODAY)
        assert owed == figures.Receivables(3, Decimal("786.80"), 1, Decimal("786.50"))
        listed = figures.unpaid_invoices(s, STAFF, TODAY)
        assert [(i.number, i.overdue) for i in listed] == [
            ("2026-000001", True), ("2026-000002", False), ("2026-000003", False)]
        assert [i.number for i in figures.unpaid_invoices(s, STAFF, TODAY, overdue_only=True)] == ["2026-000001"]
        with pytest.raises(Forbidden):
            figures.receivables(s, Actor("cas", ("candidate",)), TODAY)


def test_certificates_expiring_within_four_months(sqlite_url: str) -> None:
    with session_scope() as s:
        _entry(s, "anna", date(2027, 3, 29))  # inside: before 30 March 2027
        _entry(s, "bert", date(2027, 3, 30))  # exactly four months: outside
        _entry(s, "cees", date(2026, 12, 1), status="recertification_running")
        _entry(s, "dirk", date(2026, 12, 1), status="lapsed")
        _entry(s, "eva", date(2026, 11, 29))  # already expired
    with session_scope() as s:
        assert figures.expiring_count(s, STAFF, TODAY) == 2
        assert [e.holder for e in figures.expiring_certificates(s, STAFF, TODAY)] == ["cees", "anna"]
        with pytest.raises(Forbidden):
            figures.expiring_certificates(s, Actor("mila", ("mentor",)), TODAY)


def test_add_months_keeps_the_day_or_takes_the_last() -> None:
    assert figures.add_months(date(2026, 10, 31), 4) == date(2027, 2, 28)
    assert figures.add_months(date(2026, 11, 30), 4) == date(2027, 3, 30)
    assert figures.add_months(date(2027, 10, 31), 4) == date(2028, 2, 29)


def test_lists_of_invoices_and_certificates_leave_their_documents_unread(sqlite_url: str) -> None:
    """The dashboard's up to 500 unpaid invoices, a person's invoices and certificates: the
    PDFs and UBL (some 50 KB an invoice) are read only when a document is asked for."""
    from certflow.services import certificates, my_data
    from certflow.services.billing import views
    from tests.support import statements

    with session_scope() as s:
        create_user(s, "cas", "Cas", ["candidate"])
        unpaid = _invoice(1, "786.50", date(2026, 11, 1))
        unpaid.pdf, unpaid.ubl_xml = b"%PDF-stored", "<Invoice/>"
        s.add(unpaid)
        _entry(s, "anna", date(2027, 3, 29))
        s.get_one(Certificate, s.scalars(select(Certificate.id)).one()).pdf = b"%PDF-certificate"
    anna = Actor("anna", ("professional",))
    with session_scope() as s, statements() as seen:
        assert [i.number for i in figures.unpaid_invoices(s, STAFF, TODAY)] == ["2026-000001"]
        assert [i["number"] for i in my_data.invoices(s, Actor("cas", ("candidate",)))] == ["2026-000001"]
        assert [c["holder"] for c in certificates.certificates_of(s, anna, None)] == ["anna"]
    assert seen and not any("pdf" in statement or "ubl_xml" in statement for statement in seen)
    with session_scope() as s:  # asked for, they are there
        assert views.invoice_document(s, STAFF, "2026-000001", "pdf").content == b"%PDF-stored"
        assert views.invoice_document(s, STAFF, "2026-000001", "ubl").content == b"<Invoice/>"
        [cert] = certificates.certificates_of(s, anna, None)
        assert certificates.certificate_document(s, anna, cert["id"], None).content == b"%PDF-certificate"
