"""A throwaway production stack for the fault benchmarks: a fresh PostgreSQL database, this
run's own Redis queue, and real ``certflow worker`` / ``certflow beat`` processes. Handlers come
from tests.support (``test/echo``, ``test/slow_effect``), as in the integration tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = os.environ.get("CERTFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("CERTFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")


class Stack:
    def __init__(self, var: Path, engine: Any, extra_env: dict[str, str]) -> None:
        self.var, self.engine = var, engine
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "CERTFLOW_HANDLER_MODULES": "tests.support",
                    "CERTFLOW_BEAT_INTERVAL_SECONDS": "0.5", **extra_env}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        from certflow.launcher import die_with_parent  # after ROOT is on sys.path

        log = open(self.var / f"{name}.log", "wb")
        # die_with_parent: a bench that is killed (or times out) leaves no worker behind.
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "certflow.cli", *args], cwd=ROOT,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            preexec_fn=die_with_parent)
        return self.procs[name]

    def worker(self, concurrency: int) -> subprocess.Popen[bytes]:
        return self.start("worker", ["worker", f"--concurrency={concurrency}", "--without-gossip",
                                     "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"])

    def beat(self) -> subprocess.Popen[bytes]:
        return self.start("beat", ["beat", "--loglevel=WARNING"])

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def stack(extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    from sqlalchemy import create_engine, text

    name = f"certflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    var = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    os.environ.update(CERTFLOW_ENV="test", CERTFLOW_VAR_DIR=str(var), DATABASE_URL=PG.rsplit("/", 1)[0] + f"/{name}",
                      REDIS_URL=REDIS, CERTFLOW_QUEUE=f"certflow-bench-{uuid.uuid4().hex[:8]}",
                      **(extra_env or {}))
    import tests.support  # noqa: F401 - registers the test handlers in this process too
    from certflow.bootstrap import build_engine, create_schema
    from certflow.settings import get_settings, reset_settings
    from certflow.store.db import reset_engines
    from worker.app import make_app, make_publisher

    reset_settings()
    create_schema()
    engine = build_engine(make_publisher(make_app(get_settings())))
    running = Stack(var, engine, extra_env or {})
    try:
        yield running
    finally:
        running.stop()
        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        import redis

        redis.Redis.from_url(REDIS).delete(os.environ["CERTFLOW_QUEUE"])
        shutil.rmtree(var, ignore_errors=True)


def flow_with(tmp: Path, operator: str) -> Path:
    """tests/engine/data/flow with its first service task calling ``operator``."""
    source = ROOT / "tests" / "engine" / "data"
    target = tmp / "procs"
    shutil.copytree(source, target)
    bpmn = target / "flow" / "flow.bpmn"
    text = bpmn.read_text()
    old = 'id="test/echo" resultVariable="ref"'
    assert old in text
    bpmn.write_text(text.replace(old, f'id="{operator}" resultVariable="ref"'))
    return target


def pool_children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")
