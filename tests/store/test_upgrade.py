"""Upgrade safety: what an operator's upgrade must never break for instances already running.

* instances started on a diagram's v1 finish on v1 after v2 is deployed;
* ``alembic upgrade`` from the first migration to head, on a database holding instances in
  flight (a waiting service result, user tasks, a message subscription), keeps them running;
* a state saved by an older serializer version loads and continues.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, select, text, update

from certflow.bootstrap import build_engine
from certflow.settings import reset_settings
from certflow.store.db import reset_engines, session_scope
from certflow.store.models import Instance
from tests.engine.test_runtime import edited, office_task, start
from tests.store.test_migrations import _config
from tests.support import FLOW_DIR, PG_ADMIN, Harness


def _complete_review(h: Harness, approved: bool = True) -> None:
    h.engine.complete(h.staff, office_task(h), {"approved": approved})


def _pay(h: Harness, instance_id: str) -> None:
    ref = h.engine.instance(h.staff, instance_id).data["ref"]
    h.engine.deliver_message(h.staff, "paid", {"amount": 1}, correlation={"ref": ref})


def test_v1_instances_finish_on_v1_after_v2_is_deployed(harness: Harness, tmp_path: Path) -> None:
    harness.engine.deploy(harness.staff, FLOW_DIR)
    old = start(harness, "OLD")
    harness.run_jobs()
    # v2 sends every request straight to its end: approved or not, no payment wait.
    v2 = edited(tmp_path, 'sourceRef="approved_gw" targetRef="wait_paid"', 'sourceRef="approved_gw" targetRef="end_done"')
    [deployed] = harness.engine.deploy(harness.staff, v2)
    assert deployed.version == 2
    _complete_review(harness)
    view = harness.engine.instance(harness.staff, old)
    assert (view.version, view.status, view.waiting_for[0].startswith("paid")) == (1, "running", True)
    _pay(harness, old)
    assert harness.engine.instance(harness.staff, old).status == "completed"
    new = start(harness, "NEW")
    harness.run_jobs()
    _complete_review(harness)
    assert harness.engine.instance(harness.staff, new).version == 2
    assert harness.engine.instance(harness.staff, new).status == "completed"  # v2's path


@pytest.mark.parametrize("old_version", ["spiff-1.4+certflow-1", "spiff-1.3+certflow-1"])
def test_a_state_saved_by_an_older_serializer_loads_and_continues(flow_harness: Harness, old_version: str) -> None:
    h = flow_harness
    instance_id = start(h)
    h.run_jobs()
    with session_scope() as s:
        s.execute(update(Instance).where(Instance.id == instance_id).values(serializer_version=old_version))
    h.engine = build_engine()  # a fresh process: nothing cached from before
    assert [t.element_id for t in h.engine.instance(h.staff, instance_id).open_tasks] == ["review"]
    _complete_review(h)
    with session_scope() as s:
        assert s.scalar(select(Instance.serializer_version).where(Instance.id == instance_id)).startswith("spiff-1.5")
    _pay(h, instance_id)
    assert h.engine.instance(h.staff, instance_id).status == "completed"


def test_an_unknown_serializer_version_is_refused_clearly(flow_harness: Harness) -> None:
    instance_id = start(flow_harness)
    with session_scope() as s:
        s.execute(update(Instance).where(Instance.id == instance_id).values(serializer_version="spiff-9.9+certflow-7"))
    with pytest.raises(ValueError, match="serializer version 'spiff-9.9"):
        build_engine().instance(flow_harness.staff, instance_id)


@pytest.fixture
def flow_harness(harness: Harness) -> Harness:
    harness.engine.deploy(harness.staff, FLOW_DIR)
    return harness


@pytest.fixture
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second, empty database on the backend under test, for the schema of the first
    migration."""
    if request.node.callspec.params["backend"] == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite'}"
        return
    name = f"certflow_test_old_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_alembic_from_the_first_migration_to_head_keeps_instances_running(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    harness = Harness(build_engine())
    # Instances in flight, written by today's code: one waiting for its service result, one at
    # its user task, one waiting for a message.
    harness.engine.deploy(harness.staff, FLOW_DIR)
    harness.engine.publisher = None
    waiting_job = start(harness, "JOB")
    at_review = start(harness, "REVIEW")
    waiting_message = start(harness, "PAY")
    for job in harness.jobs():
        if job.instance_id != waiting_job:
            harness.engine.run_job(job.id)
    [pay_task] = [t for t in harness.engine.inbox(harness.staff) if t.instance_id == waiting_message]
    harness.engine.complete(harness.staff, pay_task.id, {"approved": True})
    # The same rows in a database built by the FIRST migration (columns added later are
    # absent there), then `alembic upgrade head` over them.
    old_url = request.getfixturevalue("empty_database")
    config = _config(old_url)
    command.upgrade(config, ScriptDirectory.from_config(config).get_base() or "base")
    _copy_rows(harness.engine.sessions.kw["bind"].url.render_as_string(hide_password=False), old_url)
    command.upgrade(config, "head")
    monkeypatch.setenv("DATABASE_URL", old_url)
    reset_settings()
    reset_engines()
    upgraded = Harness(build_engine())
    assert upgraded.engine.sessions.kw["bind"].dialect.name == backend
    upgraded.run_jobs()
    assert {t.instance_id for t in upgraded.engine.inbox(upgraded.staff)} == {waiting_job, at_review}
    for task in upgraded.engine.inbox(upgraded.staff):
        upgraded.engine.complete(upgraded.staff, task.id, {"approved": False})
    _pay(upgraded, waiting_message)
    with session_scope() as s:
        statuses = dict(s.execute(select(Instance.business_key, Instance.status)).tuples().all())
    assert statuses == {"JOB": "completed", "REVIEW": "completed", "PAY": "completed"}
    upgraded.engine.sessions.kw["bind"].dispose()


def _copy_rows(source_url: str, target_url: str) -> None:
    """Every row of ``source`` into ``target``'s (older) tables, keeping the columns it has."""
    source, target = create_engine(source_url), create_engine(target_url)
    old = MetaData()
    old.reflect(target)
    current = MetaData()
    current.reflect(source)
    with source.connect() as read, target.begin() as write:
        for table in old.sorted_tables:
            if table.name == "alembic_version" or table.name not in current.tables:
                continue
            columns = [c.name for c in table.columns if c.name in current.tables[table.name].columns]
            rows = read.execute(select(*(current.tables[table.name].c[c] for c in columns))).mappings().all()
            if rows:
                write.execute(table.insert(), [dict(r) for r in rows])
        if target.dialect.name == "postgresql":  # copied ids: move each id sequence past them
            for table in old.sorted_tables:
                for column in table.primary_key.columns:
                    sequence = write.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                            {"t": table.name, "c": column.name})
                    if sequence:
                        write.execute(text(f"SELECT setval('{sequence}', "
                                           f"(SELECT COALESCE(MAX({column.name}), 0) + 1 FROM {table.name}), false)"))
    source.dispose()
    target.dispose()
