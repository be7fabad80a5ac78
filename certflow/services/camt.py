"""Reading incoming payments from a CAMT.053 bank statement (ISO 20022 BankToCustomerStatement).

Dutch banks deliver statements as CAMT.053 version 001.02 or, newer, 001.08; both are read.
Only booked credit entries matter (money received). Every entry becomes one ``CamtEntry`` with
an id that is stable across downloads of the same statement (the bank's AcctSvcrRef or
NtryRef), so importing a statement twice is harmless. The file comes from outside: the parser
expands no entities and fetches nothing, and any malformed input raises ValueError before
anything is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree

NAMESPACES = (
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02",
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08",
)
MAX_ID = 200


@dataclass(frozen=True)
class CamtEntry:
    """One incoming payment on the statement."""

    external_id: str
    amount: Decimal
    currency: str
    # The structured creditor reference when given (betalingskenmerk), else the free text.
    reference: str
    payer_name: str
    booked_date: date | None


class _Reader:
    """XPath over one statement document in whichever CAMT.053 version it uses."""

    def __init__(self, namespace: str) -> None:
        self.ns = {"c": namespace}

    def all(self, el: etree._Element, path: str) -> list[etree._Element]:
        return list(el.xpath(path, namespaces=self.ns))

    def text(self, el: etree._Element, *paths: str) -> str:
        """The first non-empty text among ``paths`` (the versions differ in nesting)."""
        for path in paths:
            for found in self.all(el, path):
                if (found.text or "").strip():
                    return " ".join(found.text.split())
        return ""


def _parse_document(xml_bytes: bytes) -> tuple[etree._Element, str]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(xml_bytes, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"CAMT.053: not well-formed XML: {exc}") from exc
    namespace = etree.QName(root).namespace or ""
    if namespace not in NAMESPACES:
        raise ValueError(f"CAMT.053: unsupported document namespace {namespace!r}; "
                         f"expected one of {', '.join(NAMESPACES)}")
    if etree.QName(root).localname != "Document" or not len(root.xpath(
            "c:BkToCstmrStmt/c:Stmt", namespaces={"c": namespace})):
        raise ValueError("CAMT.053: no Document/BkToCstmrStmt/Stmt element found")
    return root, namespace


def _amount(r: _Reader, el: etree._Element, path: str, where: str) -> tuple[Decimal, str]:
    nodes = r.all(el, path)
    if not nodes:
        raise ValueError(f"CAMT.053: {where} has no amount")
    try:
        amount = Decimal((nodes[0].text or "").strip())
    except InvalidOperation:
        raise ValueError(f"CAMT.053: {where} has an unreadable amount {nodes[0].text!r}") from None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"CAMT.053: {where} has an invalid amount {amount}")
    return amount, nodes[0].get("Ccy", "EUR")


def _booked(r: _Reader, ntry: etree._Element) -> date | None:
    text = r.text(ntry, "c:BookgDt/c:Dt", "c:BookgDt/c:DtTm")
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        raise ValueError(f"CAMT.053: unreadable booking date {text!r}") from None


def _entry_id(r: _Reader, ntry: etree._Element, account: str, statement: str) -> str:
    """An id stable across re-imports of the same statement. The bank's AcctSvcrRef is unique
    per account; an NtryRef often only numbers the entries of one statement, so it is
    qualified by the statement id; with neither, a digest of the entry's content."""
    ref = r.text(ntry, "c:AcctSvcrRef")
    if not ref and r.text(ntry, "c:NtryRef"):
        ref = f"{statement}/{r.text(ntry, 'c:NtryRef')}"
    if not ref:
        ref = "sha256:" + hashlib.sha256(etree.tostring(ntry, method="c14n")).hexdigest()[:32]
    full = f"{account}:{ref}" if account else ref
    return full if len(full) <= MAX_ID else "sha256:" + hashlib.sha256(full.encode()).hexdigest()


def _details(r: _Reader, tx: etree._Element | None) -> tuple[str, str]:
    """(reference, payer name) from one transaction's details."""
    if tx is None:
        return "", ""
    reference = r.text(tx, "c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref")
    if not reference:
        reference = " ".join(n.text.strip() for n in r.all(tx, "c:RmtInf/c:Ustrd") if n.text)
    payer = r.text(tx, "c:RltdPties/c:Dbtr/c:Nm", "c:RltdPties/c:Dbtr/c:Pty/c:Nm")
    return reference, payer


def _is_booked_credit(r: _Reader, ntry: etree._Element) -> bool:
    status = r.text(ntry, "c:Sts/c:Cd", "c:Sts")
    reversal = r.text(ntry, "c:RvslInd").lower() == "true"
    return r.text(ntry, "c:CdtDbtInd") == "CRDT" and status in ("", "BOOK") and not reversal


def _entries_of(r: _Reader, ntry: etree._Element, account: str, statement: str,
                index: int) -> list[CamtEntry]:
    """One entry, or one per transaction when the bank booked a batch as a single entry."""
    where = f"entry {index}"
    entry_id = _entry_id(r, ntry, account, statement)
    booked = _booked(r, ntry)
    txs = r.all(ntry, "c:NtryDtls/c:TxDtls")
    if len(txs) <= 1:
        amount, ccy = _amount(r, ntry, "c:Amt", where)
        reference, payer = _details(r, txs[0] if txs else None)
        return [CamtEntry(entry_id, amount, ccy, reference, payer, booked)]
    out = []
    for n, tx in enumerate(txs, start=1):
        amount, ccy = _amount(r, tx, "c:Amt | c:AmtDtls/c:TxAmt/c:Amt", f"{where} transaction {n}")
        reference, payer = _details(r, tx)
        tx_ref = r.text(tx, "c:Refs/c:AcctSvcrRef")
        out.append(CamtEntry(f"{entry_id}/{tx_ref or n}"[:MAX_ID], amount, ccy, reference, payer,
                             booked))
    return out


def parse_camt053(xml_bytes: bytes) -> list[CamtEntry]:
    """Every booked incoming payment in the statement(s), in file order."""
    root, namespace = _parse_document(xml_bytes)
    r = _Reader(namespace)
    entries: list[CamtEntry] = []
    index = 0
    for stmt in r.all(root, "c:BkToCstmrStmt/c:Stmt"):
        account = r.text(stmt, "c:Acct/c:Id/c:IBAN")
        statement = r.text(stmt, "c:Id") or r.text(stmt, "c:ElctrncSeqNb")
        for ntry in r.all(stmt, "c:Ntry"):
            index += 1
            if _is_booked_credit(r, ntry):
                entries.extend(_entries_of(r, ntry, account, statement, index))
    return entries
