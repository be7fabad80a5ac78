"""Scale-out without Docker: 1 web + 3 worker processes + 1 beat on PostgreSQL + Redis, many
first-certification lifecycles driven through the HTTP API at once (bench/scale.py does the
driving and the checks). All finish; no instance is corrupted; no invoice number, certificate
or email is made twice; every worker ran a share of the jobs.

The issue asks for 500. On the 2-core machine those took 835 s under other engineers' load
(docs/operations.md, "Scale-out figures"): more than the suite's budget. So the suite runs
``CERTFLOW_SCALE_LIFECYCLES`` (30 by default: at least 120 jobs, enough for each worker's
share to show); ``python bench/scale.py --workers 3 --lifecycles 500`` or this test with ``CERTFLOW_SCALE_LIFECYCLES=500`` runs the full 500 with the same checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.scale import Stack, create_database, drop_database, run
from tests.support import REDIS

pytestmark = pytest.mark.integration

LIFECYCLES = int(os.environ.get("CERTFLOW_SCALE_LIFECYCLES", "30"))


def test_three_workers_finish_every_lifecycle_exactly_once(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    url = create_database()  # migrated by Alembic, as in production (pg_url has create_all's schema)
    try:
        outcome = run(Stack(url, REDIS, tmp_path / "stack", workers=3), LIFECYCLES)
    finally:
        drop_database(url)
    assert outcome.failures == [], outcome.failures[:5]
    assert outcome.problems == []
    total = sum(outcome.jobs.values())
    assert total >= 4 * LIFECYCLES  # at least its four emails leave each lifecycle through a job
    for worker, jobs in outcome.jobs.items():
        assert jobs >= total * 0.1, f"{worker} ran {jobs:.0f} of {total:.0f} jobs: {outcome.jobs}"
    print(f"\nscale: {LIFECYCLES} lifecycles in {outcome.seconds:.1f}s ({outcome.per_s:.2f}/s), jobs {outcome.jobs}")
