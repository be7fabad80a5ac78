"""CAMT.053 import rules the office would notice: a reversed credit or a credit in another
currency never pays an invoice, a booking date with a time is still that day, zero amounts are
refused, the same entry reference in two statements is two payments, earlier partial payments
become matched when the last part arrives, and a hostile file reads nothing and loads nothing.
Hypothesis generates statements to check amounts and references survive the round trip."""

from __future__ import annotations

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
                     groups=[], created_at=NOW))
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


# -- payments: what the office queue and the reminders show ------------------------------------
def staff_pay(session: Session, number: str | None, amount: str, external_id: str,  # noqa: F811
              **extra: object) -> object:
    return register_payment(session, LATER, invoice_number=number, amount=Decimal(amount),
                            source="staff", external_id=external_id, actor="office", **extra)  # type: ignore[arg-type]


def test_amount_received_counts_only_what_paid_the_invoice(session: Session,  # noqa: F811
                                                            invoices: list[str]) -> None:
    from certflow.services.payments import amount_received

    invoice = session.scalars(select(Invoice).where(Invoice.number == invoices[0])).one()
    assert amount_received(session, invoice) == Decimal("0")
    staff_pay(session, invoices[0], "786.50", "a-1")
    staff_pay(session, invoices[0], "786.50", "a-2")  # paid twice: overpaid, not "received"
    assert amount_received(session, invoice) == Decimal("786.50")


def test_a_last_part_settles_only_its_own_invoices_partials(session: Session,  # noqa: F811
                                                            invoices: list[str]) -> None:
    other = staff_pay(session, invoices[0], "100.00", "o-1")
    staff_pay(session, invoices[1], "756.25", "m-1")
    assert session.get(Payment, other.payment_id).status == "partial"  # type: ignore[attr-defined]
    assert status_of(session, invoices[0]) == "open"


def test_an_unmatched_payment_pays_nothing_and_says_so(session: Session,  # noqa: F811
                                                        invoices: list[str]) -> None:
    outcome = register_payment(session, LATER, payment_reference="gift", amount=Decimal("5.00"),
                               source="api", external_id="u-1", actor="api")
    assert (outcome.status, outcome.invoice_paid, outcome.invoice_number) == ("unmatched", False, None)
    assert (outcome.source, outcome.external_id) == ("api", "u-1")
    again = register_payment(session, LATER, payment_reference="gift", amount=Decimal("5.00"),
                             source="api", external_id="u-1", actor="api")
    assert again.duplicate and again.invoice_paid is False


def test_what_a_payment_row_keeps(session: Session, invoices: list[str]) -> None:  # noqa: F811
    plain = staff_pay(session, invoices[0], "10.00", "k-1")
    row = session.get(Payment, plain.payment_id)  # type: ignore[attr-defined]
    assert row is not None and (row.payer_name, row.payment_reference) == ("", invoices[0])
    long_ref = "9" * 2500
    long = register_payment(session, LATER, payment_reference=long_ref, amount=Decimal("1.00"),
                            source="api", external_id="k-2", actor="api", payer_name="N" * 300)
    row = session.get(Payment, long.payment_id)
    assert row is not None and len(row.payment_reference) == 2000 and len(row.payer_name) == 200
    nothing = register_payment(session, LATER, amount=Decimal("1.00"), source="api",
                               external_id="k-3", actor="api")
    assert session.get(Payment, nothing.payment_id).payment_reference == ""  # type: ignore[union-attr]


@pytest.mark.parametrize("external_id, ok", [("x" * 200, True), ("x" * 201, False),
                                             ("   ", False), ("", False)])
def test_external_id_length(session: Session, invoices: list[str], external_id: str,  # noqa: F811
                            ok: bool) -> None:
    if ok:
        staff_pay(session, invoices[0], "1.00", external_id)
    else:
        with pytest.raises(ValueError, match=r"^payment external_id must be 1\.\.200 characters$"):
            staff_pay(session, invoices[0], "1.00", external_id)


def test_office_queue_is_oldest_first(session: Session, invoices: list[str]) -> None:  # noqa: F811
    from datetime import timedelta

    from certflow.services.payments import open_payment_issues

    times = [LATER + timedelta(hours=h) for h in (3, 1, 2)]
    for n, when in enumerate(times):
        register_payment(session, when, payment_reference="?", amount=Decimal("1.00"),
                         source="api", external_id=f"q-{n}", actor="api")
    assert [p.external_id for p in open_payment_issues(session)] == ["q-1", "q-2", "q-0"]


def test_a_reference_text_without_a_match_is_unmatched(session: Session,  # noqa: F811
                                                       invoices: list[str]) -> None:
    from certflow.services.payments import find_invoice

    assert find_invoice(session, payment_reference=None) is None
    assert find_invoice(session, payment_reference="") is None
    assert find_invoice(session, payment_reference="XXXX") is None
