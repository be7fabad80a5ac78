"""``certflow doctor`` as an operator runs it: a healthy system exits 0; each thing that is
wrong (schema not migrated, processes/ not deployed, a stuck job, an open incident, a late
timer, unreachable services, unsafe production settings) is named with its fix and exits 1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import certflow.bootstrap
from certflow.bootstrap import build_engine, migrate
from certflow.cli import main
from certflow.clock import CLOCK, parse_duration
from certflow.settings import reset_settings
from certflow.store.db import reset_engines, session_scope
from certflow.store.models import Incident
from tests.support import FLOW_DIR, Harness


def doctor() -> Result:
    certflow.bootstrap.engine.cache_clear()
    return CliRunner().invoke(main, ["doctor"])


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: str) -> None:
    processes = tmp_path / "processes"
    if not processes.exists():
        shutil.copytree(FLOW_DIR, processes)
    values = {"CERTFLOW_VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": f"sqlite:///{tmp_path / 'doc.sqlite'}",
              "REDIS_URL": "", "CERTFLOW_ENV": "test", "CERTFLOW_PROCESSES_DIR": str(processes),
              "CERTFLOW_HANDLER_MODULES": "tests.support", **extra}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_engines()


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """A migrated, deployed, quiet system."""
    _env(monkeypatch, tmp_path)
    CLOCK._offset = 0.0
    migrate()
    harness = Harness(build_engine())
    harness.engine.deploy(harness.staff)
    yield harness
    certflow.bootstrap.engine.cache_clear()
    reset_engines()
    reset_settings()


def test_a_healthy_system_passes(system: Harness) -> None:
    result = doctor()
    assert result.exit_code == 0, result.output
    for name in ("database", "migrations", "broker", "smtp", "processes", "jobs", "incidents", "timers"):
        assert f"ok   {name}:" in result.output, name
    assert "all checks passed" in result.output


def test_an_undeployed_change_a_stuck_job_an_incident_and_a_late_timer_fail(system: Harness, tmp_path: Path) -> None:
    system.engine.start(system.staff, "flow", "K1", {"key": "K1"})
    system.run_jobs()  # K1 waits in review, with a reminder timer nobody fires
    instance_id = system.engine.start(system.staff, "flow", "K2", {"key": "K2"}).id  # its job never runs
    bpmn = tmp_path / "processes" / "flow" / "flow.bpmn"
    bpmn.write_text(bpmn.read_text().replace("</bpmn:definitions>", "<!-- edited --></bpmn:definitions>"))
    with session_scope() as s:
        s.add(Incident(instance_id=instance_id, task_id="t", element_id="make_ref", operator="test/echo",
                       error="down", traceback="", attempts=5, status="open", created_at=CLOCK.now()))
        CLOCK.advance(s, parse_duration("P30D"), allowed=True)
    result = doctor()
    assert result.exit_code == 1, result.output
    out = result.output
    assert "FAIL processes: processes/ differs from what is deployed: flow (changed)" in out
    assert "FAIL jobs: 1 job(s) due" in out and "certflow worker" in out
    assert "FAIL incidents: 1 open incident(s)" in out and "--retry" in out
    assert "FAIL timers: the oldest due timer is" in out and "start beat" in out
    system.engine.deploy(system.staff)
    assert "FAIL processes" not in doctor().output


def test_a_diagram_that_does_not_deploy_fails(system: Harness, tmp_path: Path) -> None:
    (tmp_path / "processes" / "flow" / "flow.bpmn").write_text("<not-bpmn")
    result = doctor()
    assert result.exit_code == 1 and "FAIL processes: processes/ does not deploy" in result.output


def test_an_unmigrated_database_and_a_dead_broker_fail_with_their_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    try:
        result = doctor()
    finally:
        reset_engines()
        reset_settings()
    assert result.exit_code == 1
    assert "FAIL migrations: database at none" in result.output and "certflow migrate" in result.output
    assert "FAIL broker:" in result.output and "REDIS_URL" in result.output


def test_unsafe_production_settings_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, tmp_path, CERTFLOW_ENV="production", CERTFLOW_SECRET_KEY="short",
         CERTFLOW_CLOCK_CONTROLLABLE="false")
    try:
        migrate()
        result = doctor()
    finally:
        reset_engines()
        reset_settings()
    assert result.exit_code == 1
    for problem in ("production on SQLite", "production on the SQLite broker", "CERTFLOW_SECRET_KEY is short",
                    "no CERTFLOW_SMTP_HOST", "CERTFLOW_PUBLIC_URL is http://localhost:8000"):
        assert problem in result.output, problem
    _env(monkeypatch, tmp_path, CERTFLOW_ENV="production")  # the development secret: refused outright
    result = doctor()
    reset_settings()
    assert result.exit_code == 1 and "FAIL settings: " in result.output and "SECRET_KEY" in result.output
