"""Runs after the process tests (file order): every gateway branch and boundary event of every
diagram in processes/ must have been walked by some test."""

from __future__ import annotations

import pytest

from tests.processes import coverage
from tests.processes.driver import PROCESSES


def test_every_branch_of_every_diagram_is_walked(request: pytest.FixtureRequest) -> None:
    ran = {item.module.__name__ for item in request.session.items if item.module.__name__.startswith("tests.processes.test_")}
    if len(ran) < 2:
        pytest.skip("coverage needs the process tests to run in the same session")
    table, missing = coverage.report(coverage.required(PROCESSES))
    print("\nbranch coverage of processes/ (gateway flows and boundary events):\n" + table)
    assert not missing, "branches no test walks:\n" + "\n".join(
        f"  {pid}: {sorted(items)}" for pid, items in missing.items())
