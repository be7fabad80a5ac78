"""CAMT.053 statements as Dutch banks export them (tests/data/camt053: anonymised ING, Rabobank
and ABN AMRO layouts), in every version from camt.053.001.02 to .13: each booked incoming payment
is read, its reference found wherever the bank put it, and the invoice it pays marked paid."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy.orm import Session

import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.settings import Settings
from certflow.store.billing import Invoice
from handlers import REGISTRY
from certflow.services.camt import parse_camt053, statement_version
from certflow.services.payments import import_camt053
from tests.handlers._fixtures_records import NOW, add_user, engine, make_ctx, session, settings  # noqa: F401

DATA = Path(__file__).resolve().parents[1] / "data" / "camt053"
BANKS = {name: (DATA / f"{name}_v02.xml").read_bytes() for name in ("ing", "rabobank", "abnamro")}
LATER = datetime(2026, 3, 5, 9, 0, tzinfo=timezone.utc)
FEE = Decimal("160.93")
# What each statement pays: (invoice number, where the bank put the reference).
PAID = {
    "ing": {"2026-000001": "RmtInf/Strd", "2026-000002": "RmtInf/Ustrd (invoice number)"},
    "rabobank": {"2026-000003": "RmtInf/Strd", "2026-000004": "AddtlTxInf"},
    "abnamro": {"2026-000005": "AddtlNtryInf", "2026-000006": "RmtInf/Ustrd (grouped)"},
}


def in_version(xml: bytes, version: int) -> bytes:
    """A .02 statement as a bank sends it in camt.053.001.<version>: the namespace, and the two
    shapes that changed on the way (the status became ``Sts/Cd`` in .07, a related party's
    details moved into ``Pty`` in .08); all else this reader uses is the same in every version."""
    old = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
    new = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version:02d}"
    root = etree.fromstring(xml.replace(old.encode(), new.encode()))
    ns = {"c": new}
    if version >= 7:
        for status in root.iterfind(".//c:Ntry/c:Sts", ns):
            code = etree.SubElement(status, f"{{{new}}}Cd")
            code.text, status.text = status.text, None
    if version >= 8:
        for party in root.xpath(".//c:RltdPties/*[self::c:Dbtr or self::c:Cdtr]", namespaces=ns):
            wrapper = etree.Element(f"{{{new}}}Pty")
            wrapper.extend(list(party))
            party.append(wrapper)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@pytest.fixture
def six_invoices(session: Session, settings: Settings) -> list[str]:
    add_user(session, "jan", "Jan de Vries")
    numbers = []
    for _ in range(6):
        ctx = make_ctx(session, settings, uuid.uuid4().hex)
        numbers.append(REGISTRY["invoicing/create_invoice"](
            ctx, {"customer": "jan", "product": "register_fee"})["invoice_number"])
    assert numbers == [f"2026-00000{n}" for n in range(1, 7)]
    return numbers


@pytest.mark.parametrize("version", range(2, 14))
@pytest.mark.parametrize("bank", sorted(BANKS))
def test_every_version_of_every_bank_layout_reads_the_same(bank: str, version: int) -> None:
    xml = in_version(BANKS[bank], version)
    assert statement_version(xml) == version
    assert parse_camt053(xml) == parse_camt053(BANKS[bank])


def test_only_booked_incoming_money_is_read() -> None:
    ing, rabo, abn = (parse_camt053(BANKS[b]) for b in ("ing", "rabobank", "abnamro"))
    # ING: two credits (the charges are a debit); Rabobank: the pending entry is not money yet;
    # ABN AMRO: the reversed credit is not income.
    assert [(e.amount, e.booked_date.isoformat() if e.booked_date else None) for e in ing] == [
        (FEE, "2026-03-04"), (FEE, "2026-03-04")]
    assert len(rabo) == 2 and len(abn) == 2
    assert [e.payer_name for e in ing + rabo + abn] == [
        "E. van Dijk", "Loopbaanpraktijk De Brug B.V.", "H. Bulut",
        "Stichting Derdengelden Betaaldienst", "A. BAKKER", "Ł. Kowalski"]
    assert ing[0].external_id == "NL69INGB0123456789:INGB20260304000001"
    assert abn[0].reference.startswith("/TRTP/SEPA OVERBOEKING/")


@pytest.mark.parametrize("bank", sorted(BANKS))
def test_each_bank_statement_pays_its_invoices_once(session: Session, six_invoices: list[str],
                                                    bank: str) -> None:
    result = import_camt053(session, LATER, in_version(BANKS[bank], 13 if bank == "ing" else 2),
                            actor="office")
    assert sorted(result.paid_invoice_numbers) == sorted(PAID[bank]), PAID[bank]
    assert not result.unmatched and not result.partial
    for number in six_invoices:
        invoice = session.query(Invoice).filter_by(number=number).one()
        assert invoice.status == ("paid" if number in PAID[bank] else "open"), number
    again = import_camt053(session, LATER, BANKS[bank], actor="office")
    assert not again.matched and len(again.duplicates) == len(PAID[bank])


@pytest.mark.parametrize("namespace", [
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.01",
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.14",
    "urn:iso:std:iso:20022:tech:xsd:camt.052.001.08",
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.2",
])
def test_other_documents_are_refused(namespace: str) -> None:
    xml = BANKS["ing"].replace(b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02",
                               namespace.encode())
    with pytest.raises(ValueError, match="unsupported document namespace"):
        parse_camt053(xml)
