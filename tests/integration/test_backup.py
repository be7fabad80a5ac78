"""Back up and restore as docs/operations.md says: ``pg_dump -Fc`` of a live database with
instances in flight (one waiting for a person, one whose job was queued but never run),
``pg_restore`` into a fresh database, and a real worker and beat on the restored database finish
both instances: the queued job is re-published by the sweep, nothing is lost or done twice."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from certflow.bootstrap import build_engine
from certflow.settings import get_settings, reset_settings
from certflow.store.db import reset_engines, session_scope
from certflow.store.models import Job
from tests.conftest import service_or_fail
from tests.integration.topology import Topology, wait_for
from tests.support import FLOW_DIR, PG_ADMIN, Harness
from worker.app import make_app, make_publisher

pytestmark = pytest.mark.integration


def _pg(*args: str) -> None:
    subprocess.run([*args, "-h", "127.0.0.1", "-U", "postgres"], check=True, capture_output=True, timeout=120)


@pytest.fixture
def restored_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        service_or_fail("pg_dump/pg_restore", FileNotFoundError("PostgreSQL client tools not installed"))
    name = f"certflow_restored_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    reset_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_restored_dump_finishes_the_instances_that_were_running(
        pg_url: str, redis_url: str, restored_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live = Harness(build_engine())
    live.engine.deploy(live.staff, FLOW_DIR)
    waiting = live.engine.start(live.staff, "flow", "K1", {"key": "K1"}).id
    live.run_jobs()  # K1 now waits for a person (review)
    queued = live.engine.start(live.staff, "flow", "K2", {"key": "K2"}).id  # its job was never run

    dump = tmp_path / "certflow.dump"
    _pg("pg_dump", "-Fc", "-f", str(dump), pg_url.rsplit("/", 1)[1])
    _pg("pg_restore", "--no-owner", "-d", restored_url.rsplit("/", 1)[1], str(dump))
    reset_engines()
    with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:  # the old one is gone
        conn.execute(text(f'DROP DATABASE "{pg_url.rsplit("/", 1)[1]}" WITH (FORCE)'))

    monkeypatch.setenv("DATABASE_URL", restored_url)
    monkeypatch.setenv("CERTFLOW_SWEEP_AFTER_SECONDS", "1")
    reset_settings()
    settings = get_settings()
    restored = Harness(build_engine(make_publisher(make_app(settings))))
    topology = Topology(settings.var_dir)
    try:
        topology.worker()
        topology.beat()
        wait_for(lambda: {t.business_key for t in restored.engine.inbox(restored.staff)} == {"K1", "K2"},
                 timeout=90, what="the sweep to re-publish K2's job and a worker to run it", topology=topology)
        for task in restored.engine.inbox(restored.staff):
            restored.engine.complete(restored.staff, task.id, {"approved": True})
        for instance_id in (waiting, queued):
            ref = restored.engine.instance(restored.staff, instance_id).data["ref"]
            restored.engine.deliver_message(restored.staff, "paid", {"amount": 1}, correlation={"ref": ref})
            assert restored.engine.instance(restored.staff, instance_id).status == "completed"
    finally:
        topology.stop()
    with session_scope() as s:
        runs = s.execute(select(Job.instance_id, Job.status).where(Job.element_id == "make_ref")).all()
    assert sorted(runs) == sorted([(waiting, "done"), (queued, "done")])  # one job each, done once
