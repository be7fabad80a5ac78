"""Fee and VAT tables as data: prices by date, and the checks deploy runs on edited tables."""

from __future__ import annotations

import os
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from certflow.services.billing.fees import (
    FeeTableError,
    NoPriceError,
    cached_tables,
    load_tables,
    validate_tables,
)

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"


@pytest.fixture
def tables_dir(tmp_path: Path) -> Path:
    """A copy of the real shared tables the test may edit."""
    shutil.copytree(PROCESSES / "shared", tmp_path / "shared")
    return tmp_path


def edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / "shared" / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def test_the_shipped_tables_are_valid() -> None:
    assert validate_tables(PROCESSES) == []


@pytest.mark.parametrize(
    ("product", "net", "rate", "inclusive"),
    [
        ("certification", "650.00", "21", False),
        ("recertification", "625.00", "21", False),
        ("register_fee", "133.00", "21", False),
        ("english_certificate", "22.00", "21", False),
        ("book", "25.00", "9", True),
    ],
)
def test_prices_today(product: str, net: str, rate: str, inclusive: bool) -> None:
    price = load_tables(PROCESSES).price(product, date(2026, 3, 2))
    assert price.net == Decimal(net)
    assert price.vat_rate == Decimal(rate)
    assert price.vat_inclusive is inclusive
    assert price.description_nl and price.description_en


def test_low_rate_was_6_percent_in_2018_and_9_from_2019() -> None:
    tables = load_tables(PROCESSES)
    assert tables.price("book", date(2018, 12, 31)).vat_rate == Decimal("6")
    assert tables.price("book", date(2019, 1, 1)).vat_rate == Decimal("9")
    assert tables.price("certification", date(2018, 6, 1)).vat_rate == Decimal("21")


def test_no_price_outside_the_table() -> None:
    tables = load_tables(PROCESSES)
    with pytest.raises(NoPriceError, match="recertification"):
        tables.price("recertification", date(2018, 9, 30))  # written recertification began 1 Oct
    with pytest.raises(NoPriceError, match="'coaching'"):
        tables.price("coaching", date(2026, 1, 1))


def test_overlapping_rows_are_refused_naming_the_rule(tables_dir: Path) -> None:
    edit(tables_dir, "vat.dmn", 'low_2019_date"><text>[date("2019-01-01")',
         'low_2019_date"><text>[date("2018-07-01")')
    problems = validate_tables(tables_dir)
    assert len(problems) == 1
    assert "vat.dmn" in problems[0] and "'low_2019'" in problems[0] and "overlaps" in problems[0]
    assert "'low_2001'" in problems[0]
    with pytest.raises(FeeTableError):
        load_tables(tables_dir)


def test_a_gap_between_rows_is_refused(tables_dir: Path) -> None:
    edit(tables_dir, "vat.dmn", 'standard_2012_date"><text>[date("2012-10-01")',
         'standard_2012_date"><text>[date("2013-01-01")')
    problems = validate_tables(tables_dir)
    assert any("'standard_2012'" in p and "gap" in p and "2012-09-30" in p for p in problems), problems


def test_overlapping_fee_rows_are_refused(tables_dir: Path) -> None:
    new_row = '''<rule id="certification_2026">
        <inputEntry><text>"certification"</text></inputEntry>
        <inputEntry><text>[date("2026-01-01")..date("9999-12-31")]</text></inputEntry>
        <outputEntry><text>700.00</text></outputEntry>
        <outputEntry><text>"standard"</text></outputEntry>
        <outputEntry><text>false</text></outputEntry>
        <outputEntry><text>"Certificering"</text></outputEntry>
        <outputEntry><text>"Certification"</text></outputEntry>
      </rule>
    </decisionTable>'''
    edit(tables_dir, "fees.dmn", "</decisionTable>", new_row)
    problems = validate_tables(tables_dir)
    assert any(p.startswith("fees.dmn: rule 'certification_2026' (row 6)") and "overlaps" in p
               for p in problems), problems
    # Ending the old row the day before makes it a valid price change.
    edit(tables_dir, "fees.dmn", '[date("2015-01-01")..date("9999-12-31")]',
         '[date("2015-01-01")..date("2025-12-31")]')
    assert validate_tables(tables_dir) == []
    tables = load_tables(tables_dir)
    assert tables.price("certification", date(2025, 12, 31)).net == Decimal("650.00")
    assert tables.price("certification", date(2026, 1, 1)).net == Decimal("700.00")


def test_unknown_vat_category_is_refused(tables_dir: Path) -> None:
    edit(tables_dir, "fees.dmn", '<text>"low"</text>', '<text>"reduced"</text>')
    problems = validate_tables(tables_dir)
    assert any("'book_2015'" in p and "unknown VAT category 'reduced'" in p for p in problems)


def test_fee_period_not_covered_by_vat_is_refused(tables_dir: Path) -> None:
    edit(tables_dir, "fees.dmn", '[date("2015-01-01")..date("9999-12-31")]</text></inputEntry>\n'
         '        <outputEntry id="certification_2015_net">',
         '[date("1999-01-01")..date("9999-12-31")]</text></inputEntry>\n'
         '        <outputEntry id="certification_2015_net">')
    problems = validate_tables(tables_dir)
    assert any("'certification_2015'" in p and "no 'standard' rate" in p for p in problems)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("<text>650.00</text>", "<text>€650</text>", "expected a decimal number"),
        ("<text>false</text>", "<text>nee</text>", "expected true or false"),
        ('[date("2018-10-01")..date("9999-12-31")]', '>= date("2018-10-01")', "expected [date("),
        ('[date("2018-10-01")..date("9999-12-31")]', '[date("2018-10-01")..date("2017-12-31")]',
         "ends (2017-12-31) before it starts"),
    ],
)
def test_bad_cells_are_refused_naming_the_rule(tables_dir: Path, old: str, new: str,
                                               expected: str) -> None:
    edit(tables_dir, "fees.dmn", old, new)
    problems = validate_tables(tables_dir)
    assert any(p.startswith("fees.dmn: rule '") and expected in p for p in problems), problems


def test_malformed_files_are_reported(tables_dir: Path) -> None:
    (tables_dir / "shared" / "vat.dmn").write_text("<definitions><oops></definitions>")
    problems = validate_tables(tables_dir)
    assert any(p.startswith("vat.dmn: malformed file") for p in problems)
    (tables_dir / "shared" / "vat.dmn").unlink()
    assert any(p.startswith("vat.dmn: malformed file") for p in validate_tables(tables_dir))


def test_missing_column_is_reported(tables_dir: Path) -> None:
    edit(tables_dir, "fees.dmn", 'name="vat_inclusive"', 'name="incl"')
    problems = validate_tables(tables_dir)
    assert problems and problems[0].startswith("fees.dmn: malformed file: columns")


def test_entities_are_not_expanded(tables_dir: Path) -> None:
    path = tables_dir / "shared" / "fees.dmn"
    text = path.read_text().replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE definitions [<!ENTITY x SYSTEM "file:///etc/hostname">]>')
    path.write_text(text.replace("<text>650.00</text>", "<text>&x;</text>"))
    problems = validate_tables(tables_dir)
    assert any("'certification_2015'" in p and "expected a decimal number" in p for p in problems)


def test_cached_tables_follow_edits(tables_dir: Path) -> None:
    assert cached_tables(tables_dir).price("register_fee", date(2026, 1, 1)).net == Decimal("133.00")
    fees = tables_dir / "shared" / "fees.dmn"
    edit(tables_dir, "fees.dmn", "<text>133.00</text>", "<text>140.00</text>")
    stat = fees.stat()
    os.utime(fees, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cached_tables(tables_dir).price("register_fee", date(2026, 1, 1)).net == Decimal("140.00")
