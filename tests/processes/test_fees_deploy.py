"""Changing a fee is a deploy of that table, not a code change and not a file edit alone."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from certflow.store.billing import Invoice
from certflow.store.db import session_scope
from tests.processes.driver import PROCESSES, Driver


def _apply_and_invoice(d: Driver, key: str) -> str:
    d.engine.start(d.people["cas"], "certification", key,
                   {"candidate": "cas", "eligibility_route": "evc", "motivation": "m"})
    d.settle()
    d.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    with session_scope() as s:
        return str(s.scalars(select(Invoice.net_total).order_by(Invoice.number.desc())).first())


def test_a_fee_changes_when_its_table_is_deployed(driver: Driver, tmp_path: Path) -> None:
    assert _apply_and_invoice(driver, "FEE-1") == "650.00"
    edited = tmp_path / "processes"
    shutil.copytree(PROCESSES, edited)
    fees = edited / "shared" / "fees.dmn"
    assert "<text>650.00</text>" in fees.read_text()
    fees.write_text(fees.read_text().replace("<text>650.00</text>", "<text>675.00</text>", 1))
    assert _apply_and_invoice(driver, "FEE-2") == "650.00"  # edited, not deployed: nothing changes
    deployed = driver.engine.deploy(driver.h.staff, edited)
    assert [(d.process_id, d.version, d.created) for d in deployed if d.process_id.startswith("shared/")] == [
        ("shared/fees.dmn", 2, True), ("shared/vat.dmn", 1, False)]
    assert _apply_and_invoice(driver, "FEE-3") == "675.00"
