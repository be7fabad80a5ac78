"""Faults on the production path (PostgreSQL + Redis, real Celery worker and beat processes):
workers killed with SIGKILL in the middle of a service task, Redis restarted mid-run, database
connections terminated mid-advance, beat stopped for a simulated day. After each: no task lost,
no effect (the "email" of ``test/slow_effect``) twice, every instance consistent and completing.
bench/soak.py repeats the worker kills hundreds of times."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from certflow.bootstrap import build_engine
from certflow.clock import CLOCK, parse_duration
from certflow.settings import get_settings, reset_settings
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import Instance, Job
from tests.engine.test_runtime import edited
from tests.integration.topology import Topology, _die_with_parent, wait_for
from tests.support import Harness
from worker.app import make_app, make_publisher

pytestmark = pytest.mark.integration

KILLS = 20


@pytest.fixture
def stack(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[Harness, Topology]]:
    settings = get_settings()
    harness = Harness(build_engine(make_publisher(make_app(settings))))
    harness.engine.deploy(harness.staff, slow_flow(tmp_path))
    topology = Topology(settings.var_dir, {"CERTFLOW_TEST_SLOW_SECONDS": "0.4"})
    try:
        yield harness, topology
    finally:
        topology.stop(wait=False)


def slow_flow(tmp_path: Path) -> Path:
    """tests/engine/data/flow with its first service task taking a while and sending an email."""
    return edited(tmp_path, 'id="test/echo" resultVariable="ref"', 'id="test/slow_effect" resultVariable="ref"')


def start_many(h: Harness, n: int, prefix: str) -> list[str]:
    return [h.engine.start(h.staff, "flow", f"{prefix}{i}", {"key": f"{prefix}{i}"}).id for i in range(n)]


def at_review(h: Harness) -> set[str]:
    return {t.instance_id for t in h.engine.inbox(h.staff) if t.element_id == "review"}


def emails() -> Counter[str]:
    """Emails sent per instance (the idempotency key starts with the instance id)."""
    with session_scope() as s:
        return Counter(key.split(":")[0] for key in s.scalars(select(EmailMessage.idempotency_key)))


def finish_all(h: Harness, ids: list[str]) -> None:
    """Every instance completes: reject each review (the flow ends), then check."""
    for task in [t for t in h.engine.inbox(h.staff) if t.element_id == "review"]:
        h.engine.complete(h.staff, task.id, {"approved": False})
    with session_scope() as s:
        statuses = Counter(s.scalars(select(Instance.status).where(Instance.id.in_(ids))))
    assert statuses == {"completed": len(ids)}


def assert_once_each(ids: list[str]) -> None:
    sent = emails()
    assert {i: sent[i] for i in ids} == {i: 1 for i in ids}, sent
    with session_scope() as s:
        done = Counter(s.scalars(select(Job.instance_id).where(Job.status == "done", Job.element_id == "make_ref")))
    assert {i: done[i] for i in ids} == {i: 1 for i in ids}, done


def pool_children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def markers(var: Path) -> set[str]:
    folder = var / "started"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def sweep_patience() -> None:
    """Move the shared clock past the sweep's patience for unclaimed and lost jobs."""
    with session_scope() as s:
        CLOCK.advance(s, parse_duration("PT20M"), allowed=True)


@pytest.mark.timeout(600)
def test_worker_killed_mid_service_task_20_times(stack: tuple[Harness, Topology]) -> None:
    """Pool processes are killed with SIGKILL while their handler sleeps, each job once (its
    redelivery may finish), four at a time so the test stays short."""
    h, topology = stack
    topology.worker("w", concurrency=4)
    ids = start_many(h, KILLS, "K")
    var, killed_jobs, seen = get_settings().var_dir, set(), set()
    main_pid = topology.procs["w"].pid
    while len(killed_jobs) < KILLS:
        fresh = wait_for(lambda: markers(var) - seen, timeout=60, what="a service task to start", topology=topology)
        seen |= fresh
        for marker in sorted(fresh):
            job, pid, _ = marker.rsplit(".", 2)
            if job not in killed_jobs and int(pid) in pool_children(main_pid):
                os.kill(int(pid), signal.SIGKILL)  # the pool process running the handler, mid-sleep
                killed_jobs.add(job)
    wait_for(lambda: at_review(h) >= set(ids), timeout=180, what="every instance past the killed task",
             topology=topology)
    assert_once_each(ids)
    finish_all(h, ids)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test's own on a free port (the shared one on 6379 is never touched)."""

    def __init__(self, var: Path) -> None:
        self.port, self.var = _free_port(), var
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.var)], stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        import redis

        wait_for(lambda: _pings(redis.Redis.from_url(self.url)), timeout=20, what="the private redis-server")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def _pings(client: object) -> bool:
    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.mark.timeout(600)
def test_redis_restarted_mid_run_loses_nothing(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("CERTFLOW_QUEUE", "certflow-faults")
    reset_settings()
    settings = get_settings()
    h = Harness(build_engine(make_publisher(make_app(settings))))
    h.engine.deploy(h.staff, slow_flow(tmp_path))
    topology = Topology(settings.var_dir, {"CERTFLOW_TEST_SLOW_SECONDS": "0.2"})
    try:
        topology.worker("w", concurrency=2)
        topology.beat()
        ids = start_many(h, 10, "R")
        wait_for(lambda: len(at_review(h)) >= 2, timeout=120, what="a first few jobs done", topology=topology)
        redis_server.stop()  # every queued message is gone with it (no persistence)
        ids += start_many(h, 5, "D")  # started while the broker is down: their publish fails
        redis_server.start()
        sweep_patience()
        wait_for(lambda: at_review(h) >= set(ids), timeout=240, what="every job re-published and run",
                 topology=topology)
        assert_once_each(ids)
        finish_all(h, ids)
    finally:
        topology.stop()
        redis_server.stop()


@pytest.mark.timeout(600)
def test_database_connections_dropped_mid_advance(stack: tuple[Harness, Topology], pg_url: str) -> None:
    h, topology = stack
    topology.worker("w", concurrency=2)
    topology.beat()
    ids = start_many(h, 12, "T")
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    terminated = 0
    try:
        with admin.connect() as conn:
            for _ in range(8):
                time.sleep(0.4)
                terminated += len(conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        admin.dispose()
    assert terminated > 0
    sweep_patience()
    wait_for(lambda: _safe(lambda: at_review(h) >= set(ids)), timeout=240,
             what="every instance advanced after its connections were dropped", topology=topology)
    assert_once_each(ids)
    with session_scope() as s:
        pending = s.scalar(select(func.count()).select_from(Job).where(
            Job.element_id == "make_ref", Job.status.in_(("queued", "running"))))
    assert pending == 0
    finish_all(h, ids)


def _safe(check):  # type: ignore[no-untyped-def]
    """A check run while connections are being dropped may itself lose its connection."""
    try:
        return check()
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.timeout(600)
def test_beat_stopped_for_a_simulated_day_fires_every_timer_once(stack: tuple[Harness, Topology]) -> None:
    h, topology = stack
    topology.worker("w", concurrency=2)
    topology.beat()
    ids = start_many(h, 10, "B")
    wait_for(lambda: at_review(h) >= set(ids), timeout=180, what="every instance at review", topology=topology)
    with session_scope() as s:
        CLOCK.advance(s, parse_duration("P6D"), allowed=True)  # nothing due yet (the reminder is at P7D)
    time.sleep(2)
    topology.kill("beat")
    with session_scope() as s:
        CLOCK.advance(s, parse_duration("P1DT12H"), allowed=True)  # a day and a half without beat
    topology.beat()
    wait_for(lambda: sum(_reminders(done=True).values()) == len(ids), timeout=120,
             what="every reminder fired and sent", topology=topology)
    time.sleep(3)  # more beat ticks: nothing fires twice
    assert _reminders() == Counter({i: 1 for i in ids})
    finish_all(h, ids)


def _reminders(done: bool = False) -> Counter[str]:
    with session_scope() as s:
        query = select(Job.instance_id).where(Job.element_id == "remind")
        if done:
            query = query.where(Job.status == "done")
        return Counter(s.scalars(query))
