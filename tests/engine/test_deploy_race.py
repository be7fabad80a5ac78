"""Two deploys at once, on PostgreSQL: a pipeline's deploy started twice (POST
/api/definitions/deploy), or ``certflow deploy`` beside ``certflow run``'s own. Both read the
same latest versions (none, for a first deploy; no row to lock) and wrote the same next
version numbers; the second waited on the (process, version) index and then broke it, a 500
with nothing deployed. Deploys take turns: the second finds the first's versions unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.races import while_pending

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
ONLY = ["certification", "orders"]

pytestmark = pytest.mark.integration


def test_a_first_deploy_run_twice_at_once_stores_each_version_once(pg_url: str) -> None:
    from sqlalchemy import func, select

    from certflow.bootstrap import build_engine, create_schema
    from certflow.engine import deploy as deploying
    from certflow.engine.facade import Actor
    from certflow.store.db import session_scope
    from certflow.store.models import Definition, SharedTable

    create_schema(pg_url)
    engine = build_engine()
    engine.publisher = lambda jobs: None
    owner = Actor("pia", ("process_owner",), True)

    second: Any = while_pending(
        lambda s: deploying.deploy(s, PROCESSES, "pia", engine.registry, ONLY),
        lambda: engine.deploy(owner, PROCESSES, only=ONLY))
    assert not isinstance(second, Exception), second
    assert {(d.process_id, d.version, d.created) for d in second} == {
        ("certification", 1, False), ("orders", 1, False),
        ("shared/fees.dmn", 1, False), ("shared/vat.dmn", 1, False)}
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Definition)) == 2
        assert s.scalar(select(func.count()).select_from(SharedTable)) == 2
