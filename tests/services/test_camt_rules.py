"""CAMT.053 import rules the office would notice: a reversed credit or a credit in another
currency never pays an invoice, a booking date with a time is still that day, zero amounts are
refused, the same entry reference in two statements is two payments, earlier partial payments
become matched when the last part arrives, and a hostile file reads nothing and loads nothing.
Hypothesis generates statements to check amounts and references survive the round trip."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.services.billing.numbers import payment_reference
from certflow.services.camt import parse_camt053
from certflow.services.payments import import_camt053, register_payment
from certflow.settings import Settings
from certflow.store.billing import Invoice, Payment
from certflow.store.models import User
from handlers import REGISTRY, HandlerContext
from tests.handlers._fixtures_records import engine, session  # noqa: F401  (fixtures)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
LATER = datetime(2026, 3, 6, 19, 0, tzinfo=timezone.utc)
NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


@pytest.fixture
def invoices(session: Session, tmp_path: Path) -> list[str]:  # noqa: F811
    """2026-000001 certification 786.50 and 2026-000002 recertification 756.25."""
    session.add(User(username="jan", display_name="Jan de Vries", email="jan@example.nl",
                     address={"street": "Oudegracht 1", "postal_code": "3511 AA",
                              "city": "Utrecht", "country": "NL"},
                     token_hash=hashlib.sha256(b"jan").hexdigest(), groups=[], created_at=NOW))
    settings = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    out = []
    for product in ("certification", "recertification"):
        ctx = HandlerContext(session=session, now=NOW, idempotency_key=uuid.uuid4().hex,
                             settings=settings)
        out.append(REGISTRY["invoicing/create_invoice"](
            ctx, {"customer": "jan", "product": product})["invoice_number"])
    return out


def statement(entries: str, statement_id: str = "S-1") -> bytes:
    return (f'<Document xmlns="{NS}"><BkToCstmrStmt><Stmt><Id>{statement_id}</Id>'
            f"<Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></Acct>{entries}"
            f"</Stmt></BkToCstmrStmt></Document>").encode()


def entry(amount: str, text: str, *, ref: str = "", ccy: str = "EUR", extra: str = "",
          booked: str = "<Dt>2026-03-09</Dt>") -> str:
    svcr = f"<AcctSvcrRef>{ref}</AcctSvcrRef>" if ref else ""
    return (f'<Ntry><Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>{extra}'
            f"<Sts>BOOK</Sts><BookgDt>{booked}</BookgDt>{svcr}"
            f"<NtryDtls><TxDtls><RmtInf><Ustrd>{text}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>")


def status_of(session: Session, number: str) -> str:
    return session.scalars(select(Invoice.status).where(Invoice.number == number)).one()


def test_a_reversed_credit_pays_nothing(session: Session, invoices: list[str]) -> None:  # noqa: F811
    xml = statement(entry("786.50", invoices[0], ref="R-1", extra="<RvslInd>true</RvslInd>"))
    result = import_camt053(session, LATER, xml, actor="office")
    assert result.matched == [] and status_of(session, invoices[0]) == "open"
    assert session.scalar(select(func.count()).select_from(Payment)) == 0


def test_a_credit_in_another_currency_is_for_the_office(session: Session,  # noqa: F811
                                                        invoices: list[str]) -> None:
    xml = statement(entry("786.50", invoices[0], ref="C-1", ccy="USD"))
    result = import_camt053(session, LATER, xml, actor="office")
    assert result.matched == [] and len(result.unmatched) == 1
    assert status_of(session, invoices[0]) == "open"
    assert session.scalars(select(Payment.currency)).one() == "USD"


def test_a_booking_date_with_a_time_is_that_day(session: Session, invoices: list[str]) -> None:  # noqa: F811
    xml = statement(entry("786.50", invoices[0], ref="T-1",
                          booked="<DtTm>2026-03-09T23:59:59+01:00</DtTm>"))
    [found] = parse_camt053(xml)
    assert found.booked_date == date(2026, 3, 9)
    import_camt053(session, LATER, xml, actor="office")
    assert session.scalars(select(Payment.booked_date)).one() == date(2026, 3, 9)


@pytest.mark.parametrize("amount", ["0.00", "0", "-5.00"])
def test_zero_or_negative_amounts_are_refused_with_nothing_written(
        session: Session, invoices: list[str], amount: str) -> None:  # noqa: F811
    xml = statement(entry("786.50", invoices[0], ref="Z-0") + entry(amount, "x", ref="Z-1"))
    with pytest.raises(ValueError, match="amount"):
        import_camt053(session, LATER, xml, actor="office")
    assert session.scalar(select(func.count()).select_from(Payment)) == 0
    assert status_of(session, invoices[0]) == "open"


def test_same_bank_reference_in_two_statements_is_one_payment_but_entry_numbers_are_not(
        session: Session, invoices: list[str]) -> None:  # noqa: F811
    """AcctSvcrRef is the bank's unique id for the booking: seen again (an overlapping
    download), it is the same payment. NtryRef only numbers one statement's entries."""
    first = statement(entry("100.00", invoices[1], ref="BANK-7"), "S-1")
    overlap = statement(entry("100.00", invoices[1], ref="BANK-7"), "S-2")
    import_camt053(session, LATER, first, actor="office")
    again = import_camt053(session, LATER, overlap, actor="office")
    assert len(again.duplicates) == 1
    assert session.scalar(select(func.count()).select_from(Payment)) == 1


def test_earlier_partial_payments_become_matched_when_the_last_part_arrives(
        session: Session, invoices: list[str]) -> None:  # noqa: F811
    parts = ["300.00", "300.00", "156.25"]
    outcomes = [register_payment(session, LATER, invoice_number=invoices[1],
                                 amount=Decimal(a), source="staff", external_id=f"p{i}",
                                 actor="office") for i, a in enumerate(parts)]
    assert [o.status for o in outcomes] == ["partial", "partial", "matched"]
    assert [o.invoice_paid for o in outcomes] == [False, False, True]
    stored = session.scalars(select(Payment.status).order_by(Payment.id)).all()
    assert stored == ["matched", "matched", "matched"]
    assert status_of(session, invoices[1]) == "paid"


# -- hostile files ------------------------------------------------------------------------------
def test_an_internal_entity_is_not_expanded(session: Session, invoices: list[str]) -> None:  # noqa: F811
    xml = (b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY k "' + invoices[0].encode()
           + b'">]>' + statement(entry("786.50", "&k;", ref="E-1")))
    try:
        result = import_camt053(session, LATER, xml, actor="office")
    except ValueError:
        result = None  # refusing the file is as good
    assert status_of(session, invoices[0]) == "open"
    if result is not None:
        assert result.matched == []


def test_an_external_dtd_is_not_loaded(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY secret "LEAKED">')
    xml = (f'<?xml version="1.0"?><!DOCTYPE Document SYSTEM "{dtd.as_uri()}">'.encode()
           + statement(entry("10.00", "&secret;", ref="D-1")))
    try:
        found = parse_camt053(xml)
    except ValueError:
        return  # refused: fine
    assert all("LEAKED" not in f.reference for f in found)


def test_a_huge_text_node_is_refused() -> None:
    """lxml's huge_tree=False caps a single text node at 10 MB: a statement is never that."""
    huge = "9" * (11 * 1024 * 1024)
    with pytest.raises(ValueError):
        parse_camt053(statement(entry("10.00", huge, ref="H-1")))


# -- generated statements -----------------------------------------------------------------------
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)


@hsettings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(amounts, st.integers(min_value=2000, max_value=2099),
                          st.integers(min_value=1, max_value=999_999)), min_size=1, max_size=6))
def test_amounts_and_kenmerken_survive_the_round_trip(
        lines: list[tuple[Decimal, int, int]]) -> None:
    xml = statement("".join(
        entry(f"{a:.2f}", " ".join(payment_reference(y, s)[i:i + 4] for i in range(0, 16, 4)),
              ref=f"G-{n}") for n, (a, y, s) in enumerate(lines)))
    found = parse_camt053(xml)
    assert [f.amount for f in found] == [a for a, _, _ in lines]
    assert [f.reference.replace(" ", "") for f in found] == [payment_reference(y, s)
                                                              for _, y, s in lines]
    assert len({f.external_id for f in found}) == len(lines)
