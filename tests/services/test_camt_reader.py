"""The CAMT.053 reader entry by entry, as the office sees the payments it yields: which entries
are money received, the amount and currency, the booking day, the id that makes a re-import
harmless, the reference gathered from every place a bank puts it, the payer's name, a batch
booked as one entry, and the message that says which entry of a bad file is wrong. Pure: no
database (tests/services/test_camt_rules.py and tests/handlers/test_camt_banks.py import real
statements into one)."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

import pytest

from certflow.services.camt import CamtEntry, parse_camt053, statement_version

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
IBAN = "NL91ABNA0417164300"


def stmt(entries: str, head: str = f"<Id>S-1</Id><Acct><Id><IBAN>{IBAN}</IBAN></Id></Acct>") -> str:
    return f"<Stmt>{head}{entries}</Stmt>"


def doc(*statements: str, ns: str = NS) -> bytes:
    return f'<Document xmlns="{ns}"><BkToCstmrStmt>{"".join(statements)}</BkToCstmrStmt></Document>'.encode()


def ntry(body: str = "", *, amt: str = '<Amt Ccy="EUR">10.00</Amt>', cd: str = "CRDT",
         sts: str = "<Sts>BOOK</Sts>", ref: str = "<AcctSvcrRef>R-1</AcctSvcrRef>",
         booked: str = "<BookgDt><Dt>2026-03-09</Dt></BookgDt>") -> str:
    return f"<Ntry>{amt}<CdtDbtInd>{cd}</CdtDbtInd>{sts}{booked}{ref}{body}</Ntry>"


def tx(inner: str) -> str:
    return f"<NtryDtls><TxDtls>{inner}</TxDtls></NtryDtls>"


def one(entry_xml: str) -> CamtEntry:
    [found] = parse_camt053(doc(stmt(entry_xml)))
    return found


# -- which entries are money received -------------------------------------------------------------
@pytest.mark.parametrize(("entry_xml", "counts"), [
    (ntry(), True),
    (ntry(sts=""), True),                                    # no status: booked statements only
    (ntry(sts="<Sts><Cd>BOOK</Cd></Sts>"), True),            # .07 and later
    (ntry(sts="<Sts><Prtry>BOOK</Prtry></Sts>"), True),
    (ntry(sts="<Sts>PDNG</Sts>"), False),                    # pending: not money yet
    (ntry(sts="<Sts><Cd>INFO</Cd></Sts>"), False),
    (ntry(sts="<Sts><Prtry>PDNG</Prtry></Sts>"), False),
    (ntry(cd="DBIT"), False),                                # money going out
    (ntry("<RvslInd>true</RvslInd>"), False),                # a reversed credit
    (ntry("<RvslInd>TRUE</RvslInd>"), False),
    (ntry("<RvslInd>false</RvslInd>"), True),
])
def test_only_booked_credits_that_are_not_reversed_count(entry_xml: str, counts: bool) -> None:
    assert len(parse_camt053(doc(stmt(entry_xml)))) == (1 if counts else 0)


# -- amount, currency, day ------------------------------------------------------------------------
def test_amount_currency_and_booking_day() -> None:
    found = one(ntry(amt='<Amt Ccy="USD">1234.50</Amt>'))
    assert (found.amount, found.currency, found.booked_date) == (Decimal("1234.50"), "USD", date(2026, 3, 9))
    assert one(ntry(amt="<Amt>7.00</Amt>")).currency == "EUR"
    assert one(ntry(amt="<Amt Ccy='EUR'> 7.5 </Amt>")).amount == Decimal("7.5")


@pytest.mark.parametrize(("booked", "day"), [
    ("<BookgDt><DtTm>2026-03-09T23:59:59+01:00</DtTm></BookgDt>", date(2026, 3, 9)),
    ("<BookgDt><Dt>2026-03-10</Dt><DtTm>2026-03-09T10:00:00</DtTm></BookgDt>", date(2026, 3, 10)),
    ("", None),
])
def test_the_booking_day(booked: str, day: date | None) -> None:
    assert one(ntry(booked=booked)).booked_date == day


@pytest.mark.parametrize(("entry_xml", "message"), [
    (ntry(amt=""), "CAMT.053: entry 1 has no amount"),
    (ntry(amt="<Amt>tien</Amt>"), "CAMT.053: entry 1 has an unreadable amount 'tien'"),
    (ntry(amt="<Amt>10.005</Amt>"), "CAMT.053: entry 1 has an invalid amount 10.005"),
    (ntry(amt="<Amt>0.00</Amt>"), "CAMT.053: entry 1 has an invalid amount 0.00"),
    (ntry(amt="<Amt>-1.00</Amt>"), "CAMT.053: entry 1 has an invalid amount -1.00"),
    (ntry(booked="<BookgDt><Dt>9 maart</Dt></BookgDt>"), "CAMT.053: unreadable booking date '9 maart'"),
])
def test_a_bad_entry_is_refused_saying_which_and_why(entry_xml: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_camt053(doc(stmt(entry_xml)))
    assert str(refused.value) == message


def test_entries_are_numbered_across_the_file_including_those_not_read() -> None:
    bad = ntry(amt="<Amt>x</Amt>")
    with pytest.raises(ValueError, match="^CAMT.053: entry 3 has an unreadable amount 'x'$"):
        parse_camt053(doc(stmt(ntry(cd="DBIT") + ntry()), stmt(bad)))


# -- the id that makes a second import harmless ---------------------------------------------------
def test_the_banks_own_reference_qualified_by_the_account() -> None:
    assert one(ntry()).external_id == f"{IBAN}:R-1"


def test_an_entry_number_is_qualified_by_the_statement() -> None:
    entry_xml = ntry(ref="<NtryRef>0001</NtryRef>")
    assert one(entry_xml).external_id == f"{IBAN}:S-1/0001"
    by_sequence = stmt(entry_xml, f"<ElctrncSeqNb>42</ElctrncSeqNb><Acct><Id><IBAN>{IBAN}</IBAN></Id></Acct>")
    assert [e.external_id for e in parse_camt053(doc(by_sequence))] == [f"{IBAN}:42/0001"]


def test_an_empty_bank_reference_is_no_reference() -> None:
    assert one(ntry(ref="<AcctSvcrRef/><NtryRef>0007</NtryRef>")).external_id == f"{IBAN}:S-1/0007"
    assert one(ntry(ref="<AcctSvcrRef>  </AcctSvcrRef><NtryRef>0007</NtryRef>")).external_id == f"{IBAN}:S-1/0007"


def test_without_references_the_content_is_the_id() -> None:
    entry_xml = ntry(ref="")
    first = one(entry_xml).external_id
    assert first.startswith(f"{IBAN}:sha256:") and len(first) == len(IBAN) + 1 + 7 + 32
    assert one(entry_xml).external_id == first                             # same file, same id
    assert one(ntry(amt="<Amt>11.00</Amt>", ref="")).external_id != first  # other payment, other id


def test_a_re_download_that_orders_attributes_otherwise_is_the_same_payment() -> None:
    """Without bank references the id is a digest of the entry in canonical form: the same
    entry serialized with its attributes in another order is recognised."""
    one_way = ntry(amt='<Amt Ccy="EUR" Scale="2">10.00</Amt>', ref="")
    other_way = ntry(amt='<Amt Scale="2" Ccy="EUR">10.00</Amt>', ref="")
    assert one(one_way).external_id == one(other_way).external_id


def test_without_an_account_the_id_is_the_reference_alone() -> None:
    found = parse_camt053(doc(stmt(ntry(), "<Id>S-1</Id>")))
    assert [e.external_id for e in found] == ["R-1"]


def test_an_overlong_id_becomes_its_digest() -> None:
    ref = "R" * 200
    expected = "sha256:" + hashlib.sha256(f"{IBAN}:{ref}".encode()).hexdigest()
    assert one(ntry(ref=f"<AcctSvcrRef>{ref}</AcctSvcrRef>")).external_id == expected
    fits = "R" * (200 - len(IBAN) - 1)
    assert one(ntry(ref=f"<AcctSvcrRef>{fits}</AcctSvcrRef>")).external_id == f"{IBAN}:{fits}"


# -- what the payer quoted, and who paid --------------------------------------------------------
def test_the_reference_from_every_place_most_specific_first_without_repeats() -> None:
    found = one(ntry(tx(
        "<RmtInf><Ustrd>factuur   2026-000001</Ustrd>"
        "<Strd><CdtrRefInf><Ref>4202600000000001</Ref></CdtrRefInf><AddtlRmtInf>lidmaatschap</AddtlRmtInf></Strd>"
        "</RmtInf><AddtlTxInf>via iDEAL</AddtlTxInf><AddtlTxInf>factuur 2026-000001</AddtlTxInf>")
        + "<AddtlNtryInf>/REMI/bijschrijving</AddtlNtryInf>"))
    assert found.reference == ("4202600000000001 | lidmaatschap | factuur 2026-000001 | via iDEAL | "
                               "/REMI/bijschrijving")


def test_an_entry_without_details_keeps_its_own_text() -> None:
    found = one(ntry("<AddtlNtryInf>/NAME/ A. BAKKER /REMI/2026-000005</AddtlNtryInf>"))
    assert (found.reference, found.payer_name) == ("/NAME/ A. BAKKER /REMI/2026-000005", "A. BAKKER")
    assert one(ntry()).reference == "" and one(ntry()).payer_name == ""


def test_comments_and_processing_instructions_do_not_split_a_reference() -> None:
    found = one(ntry(tx("<RmtInf><Ustrd>2026-<!-- note -->000001<?pi x?> betaald</Ustrd></RmtInf>")))
    assert found.reference == "2026-000001 betaald"


@pytest.mark.parametrize(("parties", "name"), [
    ("<Dbtr><Nm>J. de Vries</Nm></Dbtr>", "J. de Vries"),
    ("<Dbtr><Pty><Nm>J. de Vries</Nm></Pty></Dbtr>", "J. de Vries"),
    ("<UltmtDbtr><Nm>Stichting X</Nm></UltmtDbtr>", "Stichting X"),
    ("<UltmtDbtr><Pty><Nm>Stichting X</Nm></Pty></UltmtDbtr>", "Stichting X"),
    ("<Dbtr><Nm>  </Nm></Dbtr><UltmtDbtr><Nm>Stichting X</Nm></UltmtDbtr>", "Stichting X"),
    ("<Dbtr><Nm>J.  de\n Vries</Nm></Dbtr><UltmtDbtr><Nm>Stichting X</Nm></UltmtDbtr>", "J. de Vries"),
])
def test_the_payer_is_the_debtor_else_the_ultimate_debtor(parties: str, name: str) -> None:
    assert one(ntry(tx(f"<RltdPties>{parties}</RltdPties>"))).payer_name == name


def test_a_named_payer_is_not_replaced_by_the_entry_text() -> None:
    found = one(ntry(tx("<RltdPties><Dbtr><Nm>J. de Vries</Nm></Dbtr></RltdPties>")
                     + "<AddtlNtryInf>/NAME/OTHER/</AddtlNtryInf>"))
    assert found.payer_name == "J. de Vries"


# -- a batch booked as one entry ------------------------------------------------------------------
def test_a_batch_is_one_payment_per_transaction() -> None:
    batch = ntry(amt="<Amt>30.00</Amt>", body=(
        "<AddtlNtryInf>Batch 17</AddtlNtryInf><NtryDtls>"
        "<TxDtls><Refs><AcctSvcrRef>T-A</AcctSvcrRef></Refs><Amt>10.00</Amt>"
        "<RltdPties><Dbtr><Nm>A</Nm></Dbtr></RltdPties><RmtInf><Ustrd>2026-000001</Ustrd></RmtInf></TxDtls>"
        "<TxDtls><AmtDtls><TxAmt><Amt Ccy='EUR'>20.00</Amt></TxAmt></AmtDtls>"
        "<RmtInf><Ustrd>2026-000002</Ustrd></RmtInf></TxDtls>"
        "</NtryDtls>"))
    first, second = parse_camt053(doc(stmt(batch)))
    assert (first.external_id, first.amount, first.reference, first.payer_name) == (
        f"{IBAN}:R-1/T-A", Decimal("10.00"), "2026-000001", "A")
    assert (second.external_id, second.amount, second.reference, second.payer_name) == (
        f"{IBAN}:R-1/2", Decimal("20.00"), "2026-000002", "")
    assert first.booked_date == second.booked_date == date(2026, 3, 9)
    assert (first.currency, second.currency) == ("EUR", "EUR")


def test_a_batch_transaction_without_an_amount_is_named() -> None:
    batch = ntry(body=tx("<Amt>1.00</Amt>").replace("</TxDtls></NtryDtls>",
                                                   "</TxDtls><TxDtls></TxDtls></NtryDtls>"))
    with pytest.raises(ValueError, match="^CAMT.053: entry 1 transaction 2 has no amount$"):
        parse_camt053(doc(stmt(batch)))


def test_a_batch_id_never_grows_past_the_column() -> None:
    long_ref = "T" * 250
    batch = ntry(body=(f"<NtryDtls><TxDtls><Refs><AcctSvcrRef>{long_ref}</AcctSvcrRef></Refs><Amt>1.00</Amt></TxDtls>"
                       "<TxDtls><Amt>2.00</Amt></TxDtls></NtryDtls>"))
    ids = [e.external_id for e in parse_camt053(doc(stmt(batch)))]
    assert ids == [f"{IBAN}:R-1/{long_ref}"[:200], f"{IBAN}:R-1/2"]


# -- the document ---------------------------------------------------------------------------------
def test_statements_are_read_in_file_order() -> None:
    two = doc(stmt(ntry(ref="<AcctSvcrRef>A</AcctSvcrRef>")),
              stmt(ntry(ref="<AcctSvcrRef>B</AcctSvcrRef>"), "<Id>S-2</Id>"))
    assert [e.external_id for e in parse_camt053(two)] == [f"{IBAN}:A", "B"]


@pytest.mark.parametrize("version", [2, 8, 13])
def test_the_version_is_read_from_the_namespace(version: int) -> None:
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version:02d}"
    assert statement_version(doc(stmt(""), ns=ns)) == version


@pytest.mark.parametrize(("xml", "message"), [
    (f'<Statement xmlns="{NS}"><BkToCstmrStmt><Stmt/></BkToCstmrStmt></Statement>'.encode(),
     "CAMT.053: no Document/BkToCstmrStmt/Stmt element found"),
    (doc(), "CAMT.053: no Document/BkToCstmrStmt/Stmt element found"),
    (b"<Document><BkToCstmrStmt><Stmt/></BkToCstmrStmt></Document>",
     "CAMT.053: unsupported document namespace ''; expected urn:iso:std:iso:20022:tech:xsd:camt.053.001.02 up to .13"),
])
def test_what_is_not_a_statement(xml: bytes, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_camt053(xml)
    assert str(refused.value) == message


def test_malformed_xml_is_refused() -> None:
    with pytest.raises(ValueError, match="^CAMT.053: not well-formed XML: "):
        parse_camt053(b"<Document><BkToCstmrStmt>")
