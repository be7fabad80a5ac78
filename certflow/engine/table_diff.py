"""What changed between two texts of a decision table (the fee and VAT tables), in the terms a
process owner edits: rows (DMN rules) added, removed and changed, and per changed row the cells
that changed, named by their column (an input's label, an output's name).

Rows are matched by their rule id, which the table editor keeps while a row is edited and
gives a new row a new one; a rule without an id is matched by its position. Read from the XML
only, so a table that no longer passes the checks still compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from certflow.engine.deploy import read_xml


@dataclass
class RowChange:
    rule: str
    kind: str  # added | removed | changed
    cells: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # column -> (old, new)


@dataclass
class TableDiff:
    columns: list[str]
    rows: list[RowChange]

    @property
    def empty(self) -> bool:
        return not self.rows

    def counts(self) -> dict[str, int]:
        found = {"added": 0, "removed": 0, "changed": 0}
        for row in self.rows:
            found[row.kind] += 1
        return found


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _children(node: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in node if _local(c) == name]


def _cell(entry: etree._Element) -> str:
    text = next((c for c in entry if _local(c) == "text"), None)
    return "" if text is None else (text.text or "").strip()


def rows(content: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The columns of the first decision table, and its rows: {rule id: {column: cell}}."""
    try:
        root = read_xml(None, content)
    except (etree.XMLSyntaxError, ValueError):
        return [], {}
    table = next((n for n in root.iter() if _local(n) == "decisionTable"), None)
    if table is None:
        return [], {}
    inputs = [i.get("label") or i.get("id") or f"input {n + 1}" for n, i in enumerate(_children(table, "input"))]
    outputs = [o.get("name") or o.get("label") or o.get("id") or f"output {n + 1}"
               for n, o in enumerate(_children(table, "output"))]
    found: dict[str, dict[str, str]] = {}
    for n, rule in enumerate(_children(table, "rule")):
        cells = [_cell(e) for e in _children(rule, "inputEntry")], [_cell(e) for e in _children(rule, "outputEntry")]
        row = {**dict(zip(inputs, cells[0])), **dict(zip(outputs, cells[1]))}
        found[rule.get("id") or f"#{n + 1}"] = row
    return inputs + outputs, found


def diff(old: str, new: str) -> TableDiff:
    """Rows of ``new`` against ``old``: added and changed in ``new``'s order, removed last."""
    old_columns, before = rows(old)
    new_columns, after = rows(new)
    columns = new_columns + [c for c in old_columns if c not in new_columns]
    changes = []
    for rule, row in after.items():
        if rule not in before:
            changes.append(RowChange(rule, "added", {c: (None, row[c]) for c in columns if c in row}))
            continue
        cells = {c: (before[rule].get(c), row.get(c)) for c in columns
                 if before[rule].get(c) != row.get(c)}
        if cells:
            changes.append(RowChange(rule, "changed", cells))
    for rule, row in before.items():
        if rule not in after:
            changes.append(RowChange(rule, "removed", {c: (row[c], None) for c in columns if c in row}))
    return TableDiff(columns, changes)
