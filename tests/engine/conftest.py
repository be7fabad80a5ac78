"""Fixtures the engine tests share."""

from __future__ import annotations

import pytest

from tests.support import CHAIN_DIR, Harness


@pytest.fixture
def chain(harness: Harness) -> Harness:
    """The chain process (tests/engine/data_chain) deployed."""
    harness.engine.deploy(harness.staff, CHAIN_DIR)
    return harness


@pytest.fixture
def fresh_script_caches() -> None:
    """The sandbox remembers compiled snippets and which expressions are cheap, per process.
    A test of those rules must have them computed, not recalled from an earlier test (in a
    mutation run the mutated rule would otherwise never run)."""
    from certflow.engine.sandbox import compile_script, runs_in_process, script_runs_in_process

    compile_script.cache_clear()
    runs_in_process.cache_clear()
    script_runs_in_process.cache_clear()
