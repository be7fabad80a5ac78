"""Reading incoming payments from a CAMT.053 bank statement (ISO 20022 BankToCustomerStatement).

Banks send every version from camt.053.001.02 (still what most Dutch banks export) up to .13.
The parts read here have the same shape in all of them, apart from two changes that are read in
both forms: the entry status became ``Sts/Cd`` (was ``Sts``) and a related party's name moved to
``Dbtr/Pty/Nm`` (was ``Dbtr/Nm``). So there is one reader: the document's namespace is checked
(camt.053.001.NN, NN from 02 to 13) and then dropped.

Only booked credit entries count (money received; not pending, not reversed). Each becomes one
``CamtEntry`` (or one per transaction when the bank booked a batch as one entry) with an id
stable across downloads of the same statement (the bank's AcctSvcrRef or NtryRef), so importing
a statement twice is harmless. The reference is gathered from every place a Dutch bank may put
what the payer quoted, most specific first: the structured creditor reference (``RmtInf/Strd``,
where the betalingskenmerk goes), the free text (``RmtInf/Ustrd``), the transaction's
``AddtlTxInf`` and, for an entry of one transaction, the entry's ``AddtlNtryInf`` (ABN AMRO
writes the description there in the MT940 form ``/NAME/.../REMI/...``). The matcher looks for a
betalingskenmerk or invoice number anywhere in it.

The file comes from outside: the parser expands no entities and fetches nothing, and any
malformed input raises ValueError before anything is written (``NotXml`` for a file that is no
XML at all, ``NotCamt053`` for XML of another kind, so a page can say which).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from lxml import etree

NAMESPACE = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(\d{2})$")
VERSIONS = range(2, 14)  # camt.053.001.02 .. .13
MAX_ID = 200
REFERENCE_SEPARATOR = " | "
_MT940_NAME = re.compile(r"/NAME/([^/]+)")


class NotXml(ValueError):
    """The file is not well-formed XML (a PDF or CSV export, a download cut off)."""


class NotCamt053(ValueError):
    """Well-formed XML, but not a CAMT.053 statement of a version read here."""


@dataclass(frozen=True)
class CamtEntry:
    """One incoming payment on the statement."""

    external_id: str
    amount: Decimal
    currency: str
    # What the payer quoted, from every place the bank put it (see the module docstring).
    reference: str
    payer_name: str
    booked_date: date | None


def _text(el: etree._Element | None, *paths: str) -> str:
    """The first non-empty text among ``paths`` below ``el``, whitespace collapsed."""
    if el is None:
        return ""
    for path in paths:
        for found in el.iterfind(path):
            if (found.text or "").strip():
                return " ".join(found.text.split())
    return ""


def _texts(el: etree._Element, path: str) -> list[str]:
    return [" ".join(n.text.split()) for n in el.iterfind(path) if (n.text or "").strip()]


def statement_version(xml_bytes: bytes) -> int:
    """The camt.053.001 version of a statement (2 .. 13); ValueError for anything else."""
    return _parse_document(xml_bytes)[1]


def _parse_document(xml_bytes: bytes) -> tuple[etree._Element, int]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(xml_bytes, parser)
    except etree.XMLSyntaxError as exc:
        raise NotXml(f"CAMT.053: not well-formed XML: {exc}") from exc
    namespace = etree.QName(root).namespace or ""
    match = NAMESPACE.match(namespace)
    if match is None or int(match.group(1)) not in VERSIONS:
        raise NotCamt053(f"CAMT.053: unsupported document namespace {namespace!r}; expected "
                         "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02 up to .13")
    for el in root.iter(etree.Element):
        el.tag = etree.QName(el).localname
    if root.tag != "Document" or root.find("BkToCstmrStmt/Stmt") is None:
        raise NotCamt053("CAMT.053: no Document/BkToCstmrStmt/Stmt element found")
    return root, int(match.group(1))


def _amount(el: etree._Element, paths: tuple[str, ...], where: str) -> tuple[Decimal, str]:
    node = next((n for p in paths for n in el.iterfind(p)), None)
    if node is None:
        raise ValueError(f"CAMT.053: {where} has no amount")
    try:
        amount = Decimal((node.text or "").strip())
    except InvalidOperation:
        raise ValueError(f"CAMT.053: {where} has an unreadable amount {node.text!r}") from None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"CAMT.053: {where} has an invalid amount {amount}")
    return amount, node.get("Ccy", "EUR")


def _booked(ntry: etree._Element) -> date | None:
    text = _text(ntry, "BookgDt/Dt", "BookgDt/DtTm")
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        raise ValueError(f"CAMT.053: unreadable booking date {text!r}") from None


def _entry_id(ntry: etree._Element, account: str, statement: str) -> str:
    """An id stable across re-imports of the same statement. The bank's AcctSvcrRef is unique
    per account; an NtryRef often only numbers the entries of one statement, so it is
    qualified by the statement id; with neither, a digest of the entry's content."""
    ref = _text(ntry, "AcctSvcrRef")
    if not ref and _text(ntry, "NtryRef"):
        ref = f"{statement}/{_text(ntry, 'NtryRef')}"
    if not ref:
        ref = "sha256:" + hashlib.sha256(etree.tostring(ntry, method="c14n")).hexdigest()[:32]
    full = f"{account}:{ref}" if account else ref
    return full if len(full) <= MAX_ID else "sha256:" + hashlib.sha256(full.encode()).hexdigest()


def _reference(tx: etree._Element | None, entry_info: str) -> str:
    """Everything the payer may have quoted, most specific first, without repeats."""
    parts = [] if tx is None else [
        *_texts(tx, "RmtInf/Strd/CdtrRefInf/Ref"), *_texts(tx, "RmtInf/Strd/AddtlRmtInf"),
        *_texts(tx, "RmtInf/Ustrd"), *_texts(tx, "AddtlTxInf")]
    if entry_info:
        parts.append(entry_info)
    return REFERENCE_SEPARATOR.join(dict.fromkeys(parts))


def _payer(tx: etree._Element | None, entry_info: str) -> str:
    name = _text(tx, "RltdPties/Dbtr/Nm", "RltdPties/Dbtr/Pty/Nm",
                 "RltdPties/UltmtDbtr/Nm", "RltdPties/UltmtDbtr/Pty/Nm")
    if not name and (match := _MT940_NAME.search(entry_info)):
        name = match.group(1).strip()
    return name


def _is_booked_credit(ntry: etree._Element) -> bool:
    status = _text(ntry, "Sts/Cd", "Sts/Prtry", "Sts")
    reversal = _text(ntry, "RvslInd").lower() == "true"
    return _text(ntry, "CdtDbtInd") == "CRDT" and status in ("", "BOOK") and not reversal


def _entries_of(ntry: etree._Element, account: str, statement: str,
                index: int) -> list[CamtEntry]:
    """One entry, or one per transaction when the bank booked a batch as a single entry."""
    where = f"entry {index}"
    entry_id = _entry_id(ntry, account, statement)
    booked = _booked(ntry)
    txs = list(ntry.iterfind("NtryDtls/TxDtls"))
    entry_info = _text(ntry, "AddtlNtryInf")
    if len(txs) <= 1:
        tx = txs[0] if txs else None
        amount, ccy = _amount(ntry, ("Amt",), where)
        return [CamtEntry(entry_id, amount, ccy, _reference(tx, entry_info),
                          _payer(tx, entry_info), booked)]
    out = []
    for n, tx in enumerate(txs, start=1):
        # The entry's own text describes the batch, not one payment in it.
        amount, ccy = _amount(tx, ("Amt", "AmtDtls/TxAmt/Amt"), f"{where} transaction {n}")
        tx_ref = _text(tx, "Refs/AcctSvcrRef")
        out.append(CamtEntry(f"{entry_id}/{tx_ref or n}"[:MAX_ID], amount, ccy,
                             _reference(tx, ""), _payer(tx, ""), booked))
    return out


def parse_camt053(xml_bytes: bytes) -> list[CamtEntry]:
    """Every booked incoming payment in the statement(s), in file order."""
    root, _version = _parse_document(xml_bytes)
    entries: list[CamtEntry] = []
    index = 0
    for stmt in root.iterfind("BkToCstmrStmt/Stmt"):
        account = _text(stmt, "Acct/Id/IBAN")
        statement = _text(stmt, "Id") or _text(stmt, "ElctrncSeqNb")
        for ntry in stmt.iterfind("Ntry"):
            index += 1
            if _is_booked_credit(ntry):
                entries.extend(_entries_of(ntry, account, statement, index))
    return entries
