"""Start the production topology (worker, beat, optionally web) as plain processes, the way
docker-compose.yml would, for integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import ROOT


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, however it dies (Linux), so an
    interrupted run leaves no worker behind to steal another run's jobs."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# Processes told to stop and not waited for (``Topology.stop(wait=False)``): reaped before the
# next start and at the end of the run (tests/conftest.py).
_STOPPING: list[subprocess.Popen[bytes]] = []


def reap(timeout: float = 15.0) -> None:
    """Wait for the processes told to stop; kill what is still there after ``timeout``."""
    deadline = time.monotonic() + timeout
    for proc in _STOPPING:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    _STOPPING.clear()


class Topology:
    def __init__(self, var: Path, extra_env: dict[str, str] | None = None,
                 base: dict[str, str] | None = None) -> None:
        self.var = var
        self.env = {**(os.environ if base is None else base), "CERTFLOW_HANDLER_MODULES": "tests.support",
                    "CERTFLOW_BEAT_INTERVAL_SECONDS": "0.5", "PYTHONPATH": str(ROOT), **(extra_env or {})}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str]) -> None:
        _STOPPING[:] = [proc for proc in _STOPPING if proc.poll() is None]
        log = open(self.var / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def worker(self, name: str = "worker", concurrency: int = 2) -> None:
        self.start(name, ["certflow.cli", "worker", f"--concurrency={concurrency}", "--without-gossip",
                          "--without-mingle", "--without-heartbeat", f"--hostname={name}@%h"])

    def beat(self) -> None:
        self.start("beat", ["certflow.cli", "beat"])

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(10)

    def stop(self, wait: bool = True) -> None:
        """Stop every process (SIGTERM: a worker's warm shutdown). A Celery worker takes 2-3 s
        to stop its pool; a test that asserts nothing after its processes stopped passes
        ``wait=False`` and goes on while they shut down (with its own database and queue)."""
        for proc in self.procs.values():
            proc.terminate()
        if not wait:
            _STOPPING.extend(self.procs.values())
            self.procs.clear()
            return
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.var.glob("*.log"))


def wait_for(check: Callable[[], Any], timeout: float = 90.0, what: str = "condition", topology: Topology | None = None) -> Any:
    # 90 s by default: a worker or beat process started on a loaded machine (CI runs beside
    # other suites) can take 30 s before it logs its first line. A passing check returns at once.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{topology.logs()}" if topology else ""))
