"""Fixtures the engine tests share."""

from __future__ import annotations

import pytest

from tests.support import CHAIN_DIR, Harness


@pytest.fixture
def chain(harness: Harness) -> Harness:
    """The chain process (tests/engine/data_chain) deployed."""
    harness.engine.deploy(harness.staff, CHAIN_DIR)
    return harness
