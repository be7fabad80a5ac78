"""bench/mutation.py names, per module, the tests that pin it. A renamed or re-parametrized
test there makes that module's mutation run stop at once with nothing measured (it happened
when the inbox paging test gained a database parameter): every name must still be a test."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.mutation import MODULES, ROOT

OPTIONS_WITH_VALUE = {"-k", "-m"}


def _named(selection: list[str]) -> list[str]:
    """The files and test ids a selection names, ``--deselect``'s included, options left out."""
    names, skip = [], False
    for arg in selection:
        if skip:
            skip = False
        elif arg in OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            names.append(arg)
    return names


def _collected(session: pytest.Session, files: list[str]) -> set[str]:
    """The test ids in ``files``: this run's own when it collected all of them and deselected
    nothing (``make test``), else a collection of their own (a run of a few tests)."""
    ids = {item.nodeid for item in session.items}
    if len(session.items) == session.testscollected and all(
            any(i.startswith(f + "::") for i in ids) for f in files):
        return ids
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    return {line.strip() for line in collected.stdout.splitlines() if "::" in line}


def test_every_test_a_mutation_run_selects_exists(request: pytest.FixtureRequest) -> None:
    wanted = sorted({name for selection in MODULES.values() for name in _named(selection)})
    files = sorted({name.split("::")[0] for name in wanted})
    ids = _collected(request.session, files)
    missing = [name for name in wanted if name not in files
               and not any(i == name or i.startswith(name + "::") or i.startswith(name + "[") for i in ids)]
    assert not missing, f"bench/mutation.py selects tests that do not exist: {missing}"
