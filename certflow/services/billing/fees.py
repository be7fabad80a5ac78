"""Fees and VAT rates as effective-dated data: the DMN tables in ``processes/shared/``.

Process owners edit ``fees.dmn`` and ``vat.dmn`` (the date convention is in
``processes/shared/README.md``: a closed range ``[date("A")..date("B")]`` per row). Prices and
rates change over time and old invoices must stay reproducible, so nothing here is a constant:
this module reads the tables with a hardened parser, answers "what does product X cost on day
D, at which VAT rate", and lists what is wrong with them so deploy can refuse a broken table
with the file and rule to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, TypeVar

from lxml import etree

from certflow.i18n import Message, N_

FEES_FILE = "fees.dmn"
VAT_FILE = "vat.dmn"
SHARED = "shared"
FEE_COLUMNS = ("product", "date", "net", "vat_category", "vat_inclusive", "description_nl",
               "description_en")
VAT_COLUMNS = ("category", "date", "rate")

_DATE_RANGE = re.compile(
    r'^\[\s*date\(\s*"(\d{4}-\d{2}-\d{2})"\s*\)\s*\.\.\s*date\(\s*"(\d{4}-\d{2}-\d{2})"\s*\)\s*\]$'
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_STRING = re.compile(r'^"((?:[^"\\]|\\.)*)"$')


class FeeTableError(ValueError):
    """The tables cannot be used; ``problems`` lists each one with its file and rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NoPriceError(LookupError):
    """No row covers the product (or VAT category) on the date asked."""


@dataclass(frozen=True)
class Price:
    """A product's price on one day.

    ``net`` is the amount as the table states it: excluding VAT, or, when ``vat_inclusive``,
    including VAT (the invoice then derives the net so the gross stays exactly that amount).
    ``vat_rate`` is in percent (``Decimal("21")``).
    """

    net: Decimal
    vat_rate: Decimal
    vat_category: str
    description_nl: str
    description_en: str
    vat_inclusive: bool


@dataclass(frozen=True)
class FeeRow:
    rule_id: str
    row: int
    product: str
    valid_from: date
    valid_until: date
    net: Decimal
    vat_category: str
    vat_inclusive: bool
    description_nl: str
    description_en: str


@dataclass(frozen=True)
class VatRow:
    rule_id: str
    row: int
    category: str
    valid_from: date
    valid_until: date
    rate: Decimal


@dataclass(frozen=True)
class FeeTables:
    fees: tuple[FeeRow, ...]
    vat: tuple[VatRow, ...]

    @property
    def products(self) -> frozenset[str]:
        return frozenset(r.product for r in self.fees)

    def vat_rate(self, category: str, on: date) -> Decimal:
        for row in self.vat:
            if row.category == category and row.valid_from <= on <= row.valid_until:
                return row.rate
        raise NoPriceError(Message(N_("%(file)s: no VAT rate for category %(category)r on %(day)s"),
                                   file=VAT_FILE, category=category, day=str(on)))

    def price(self, product: str, on: date) -> Price:
        for row in self.fees:
            if row.product == product and row.valid_from <= on <= row.valid_until:
                return Price(
                    net=row.net,
                    vat_rate=self.vat_rate(row.vat_category, on),
                    vat_category=row.vat_category,
                    description_nl=row.description_nl,
                    description_en=row.description_en,
                    vat_inclusive=row.vat_inclusive,
                )
        known = ", ".join(sorted(self.products))
        raise NoPriceError(Message(N_("%(file)s: no fee for product %(product)r on %(day)s (known: %(known)s)"),
                                   file=FEES_FILE, product=product, day=str(on), known=known))


_Row = TypeVar("_Row", "FeeRow", "VatRow")


@dataclass(frozen=True)
class _Rule:
    rule_id: str
    row: int
    cells: dict[str, str]


def _shared_dir(processes_dir: Path) -> Path:
    """Accept the processes root or the shared folder itself."""
    processes_dir = Path(processes_dir)
    return processes_dir if (processes_dir / FEES_FILE).exists() else processes_dir / SHARED


def _parse_xml(path: Path) -> etree._Element:
    # Process owners' files are untrusted input: no entity expansion, no network, no DTD.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             remove_comments=True)
    return etree.parse(str(path), parser).getroot()


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if _local(c) == name]


def _read_rules(path: Path, columns: tuple[str, ...]) -> tuple[list[_Rule], list[str]]:
    """The table's rows as {column: cell text}; file-level problems instead if it is malformed."""
    try:
        root = _parse_xml(path)
    except (OSError, etree.XMLSyntaxError) as exc:
        return [], [Message(N_("%(file)s: malformed file: %(error)s"), file=path.name, error=str(exc))]
    ns = etree.QName(root).namespace or ""
    if _local(root) != "definitions" or "omg.org/spec/DMN/" not in ns:
        return [], [Message(N_("%(file)s: malformed file: root is not a DMN <definitions> element"),
                            file=path.name)]
    tables = [t for t in root.iter() if _local(t) == "decisionTable"]
    if len(tables) != 1:
        return [], [Message(N_("%(file)s: malformed file: expected one decisionTable, found %(count)s"),
                            file=path.name, count=len(tables))]
    table = tables[0]
    names = [_input_name(i) for i in _children(table, "input")]
    names += [o.get("name", "") for o in _children(table, "output")]
    if sorted(names) != sorted(columns):
        return [], [Message(N_("%(file)s: malformed file: columns %(columns)s, expected %(expected)s"),
                            file=path.name, columns=str(names), expected=str(list(columns)))]
    rules: list[_Rule] = []
    problems: list[str] = []
    for row, rule in enumerate(_children(table, "rule"), start=1):
        texts = [_cell_text(e) for e in rule if _local(e) in ("inputEntry", "outputEntry")]
        rule_id = rule.get("id") or f"#{row}"
        if len(texts) != len(names):
            problems.append(Message(N_("%(where)s: has %(cells)s cells, expected %(expected)s"),
                                    where=_rule(path.name, rule_id, row), cells=len(texts), expected=len(names)))
            continue
        rules.append(_Rule(rule_id, row, dict(zip(names, texts))))
    return rules, problems


def _input_name(inp: etree._Element) -> str:
    expr = _children(inp, "inputExpression")
    text = _cell_text(expr[0]) if expr else ""
    return text or inp.get("label", "")


def _cell_text(el: etree._Element) -> str:
    texts = _children(el, "text")
    return (texts[0].text or "").strip() if texts else ""


def _string(text: str) -> str:
    match = _STRING.match(text)
    if not match:
        raise ValueError(Message(N_("expected a quoted string, got %(text)r"), text=text))
    return re.sub(r"\\(.)", r"\1", match.group(1))


def _number(text: str) -> Decimal:
    if not _NUMBER.match(text):
        raise ValueError(Message(N_("expected a decimal number, got %(text)r"), text=text))
    return Decimal(text)


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(Message(N_("expected true or false, got %(text)r"), text=text))
    return text == "true"


def _date_range(text: str) -> tuple[date, date]:
    match = _DATE_RANGE.match(text)
    if not match:
        raise ValueError(Message(N_('expected [date("YYYY-MM-DD")..date("YYYY-MM-DD")], got %(text)r'), text=text))
    start, end = date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))
    if end < start:
        raise ValueError(Message(N_("range ends (%(end)s) before it starts (%(start)s)"),
                                 end=str(end), start=str(start)))
    return start, end


def _fee_row(rule: _Rule) -> FeeRow:
    c = rule.cells
    start, end = _date_range(c["date"])
    net = _number(c["net"])
    if net < 0:
        raise ValueError(Message(N_("net must not be negative, got %(net)s"), net=str(net)))
    return FeeRow(rule.rule_id, rule.row, _string(c["product"]), start, end, net,
                  _string(c["vat_category"]), _boolean(c["vat_inclusive"]),
                  _string(c["description_nl"]), _string(c["description_en"]))


def _vat_row(rule: _Rule) -> VatRow:
    c = rule.cells
    start, end = _date_range(c["date"])
    rate = _number(c["rate"])
    if not Decimal(0) <= rate < Decimal(100):
        raise ValueError(Message(N_("rate must be a percentage 0..100, got %(rate)s"), rate=str(rate)))
    return VatRow(rule.rule_id, rule.row, _string(c["category"]), start, end, rate)


def _where(fname: str, row: FeeRow | VatRow) -> Message:
    return _rule(fname, row.rule_id, row.row)


def _rule(fname: str, rule_id: str, row: int) -> Message:
    """Where a problem is: the file, the rule's id and its row (dates in the messages stay
    YYYY-MM-DD, as the table writes them)."""
    return Message(N_("%(file)s: rule %(rule)r (row %(row)s)"), file=fname, rule=rule_id, row=row)


def _period_problems(fname: str, rows: list[FeeRow] | list[VatRow]) -> list[str]:
    """Overlaps and gaps between consecutive periods of the same product/category."""
    groups: dict[str, list[FeeRow | VatRow]] = {}
    for r in rows:
        groups.setdefault(r.product if isinstance(r, FeeRow) else r.category, []).append(r)
    problems: list[str] = []
    for key, group in groups.items():
        group.sort(key=lambda r: r.valid_from)
        for a, b in zip(group, group[1:]):
            if b.valid_from <= a.valid_until:
                problems.append(Message(N_("%(where)s: %(key)r from %(start)s overlaps rule %(other)r "
                                           "(row %(row)s) which runs until %(until)s"),
                                        where=_where(fname, b), key=key, start=str(b.valid_from),
                                        other=a.rule_id, row=a.row, until=str(a.valid_until)))
            elif b.valid_from > a.valid_until + timedelta(days=1):
                problems.append(Message(N_("%(where)s: gap for %(key)r: rule %(other)r (row %(row)s) ends "
                                           "%(until)s but this starts %(start)s"),
                                        where=_where(fname, b), key=key, other=a.rule_id, row=a.row,
                                        until=str(a.valid_until), start=str(b.valid_from)))
    return problems


def _vat_coverage_problems(fees: list[FeeRow], vat: list[VatRow]) -> list[str]:
    """Every fee must have a VAT rate for its category throughout its period."""
    problems: list[str] = []
    for fee in fees:
        spans = [v for v in vat if v.category == fee.vat_category]
        if not spans:
            known = ", ".join(sorted({v.category for v in vat}))
            problems.append(Message(N_("%(where)s: unknown VAT category %(category)r (known in %(file)s: "
                                       "%(known)s)"), where=_where(FEES_FILE, fee), category=fee.vat_category,
                                    file=VAT_FILE, known=known))
        elif (min(v.valid_from for v in spans) > fee.valid_from
              or max(v.valid_until for v in spans) < fee.valid_until):
            problems.append(Message(N_("%(where)s: %(file)s has no %(category)r rate for all of "
                                       "%(start)s..%(end)s"), where=_where(FEES_FILE, fee), file=VAT_FILE,
                                    category=fee.vat_category, start=str(fee.valid_from),
                                    end=str(fee.valid_until)))
    return problems


def _convert(fname: str, rules: list[_Rule], convert: Callable[[_Rule], _Row],
             problems: list[str]) -> list[_Row]:
    """Typed rows from raw ones; a bad cell becomes a problem naming the rule, not a crash."""
    out = []
    for rule in rules:
        try:
            out.append(convert(rule))
        except ValueError as exc:
            reason = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], Message) else str(exc)
            problems.append(Message("%(where)s: %(reason)s", where=_rule(fname, rule.rule_id, rule.row),
                                    reason=reason))
    return out


def _parse(processes_dir: Path) -> tuple[FeeTables, list[str]]:
    shared = _shared_dir(processes_dir)
    fee_rules, problems = _read_rules(shared / FEES_FILE, FEE_COLUMNS)
    vat_rules, vat_problems = _read_rules(shared / VAT_FILE, VAT_COLUMNS)
    problems += vat_problems
    fees = _convert(FEES_FILE, fee_rules, _fee_row, problems)
    vat = _convert(VAT_FILE, vat_rules, _vat_row, problems)
    problems += _period_problems(FEES_FILE, fees) + _period_problems(VAT_FILE, vat)
    if vat:
        problems += _vat_coverage_problems(fees, vat)
    return FeeTables(tuple(fees), tuple(vat)), problems


def validate_tables(processes_dir: Path) -> list[str]:
    """Everything wrong with fees.dmn and vat.dmn, each naming the file and rule; [] if fine."""
    return _parse(processes_dir)[1]


def load_tables(processes_dir: Path) -> FeeTables:
    """Parse both tables; refuse (FeeTableError) rather than price from a broken table."""
    tables, problems = _parse(processes_dir)
    if problems:
        raise FeeTableError(problems)
    return tables


_CACHE: dict[Path, tuple[tuple[int, int], FeeTables]] = {}


def cached_tables(processes_dir: Path) -> FeeTables:
    """``load_tables`` once per version of the files: an edit is picked up by the next
    invoice without re-parsing the XML for every invoice of a batch."""
    shared = _shared_dir(processes_dir).resolve()
    stamp = ((shared / FEES_FILE).stat().st_mtime_ns, (shared / VAT_FILE).stat().st_mtime_ns)
    hit = _CACHE.get(shared)
    if hit is None or hit[0] != stamp:
        hit = (stamp, load_tables(shared))
        _CACHE[shared] = hit
    return hit[1]


def deployed_tables(session: Any, var_dir: Path, fallback: Path) -> FeeTables:
    """The latest *deployed* fee and VAT tables (a file edited but not deployed prices
    nothing). Each deployed pair is written once under ``var_dir`` and parsed once; with
    nothing deployed yet (a handler's own tests) the files in ``fallback`` are used."""
    from sqlalchemy import select

    from certflow.store.models import SharedTable

    latest: dict[str, Any] = {}
    for row in session.scalars(select(SharedTable).where(SharedTable.name.in_((FEES_FILE, VAT_FILE)))
                               .order_by(SharedTable.version)):
        latest[row.name] = row
    if len(latest) < 2:
        return cached_tables(fallback)
    folder = var_dir / "shared-tables" / f"{latest[FEES_FILE].content_hash[:16]}-{latest[VAT_FILE].content_hash[:16]}"
    if not folder.exists():
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        for name, row in latest.items():
            (tmp / name).write_text(row.content, encoding="utf-8")
        try:
            tmp.rename(folder)
        except OSError:  # another worker wrote the same pair first
            pass
    return cached_tables(folder)
