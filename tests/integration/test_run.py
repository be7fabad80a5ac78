"""`certflow run` (what `make run` starts): one command brings up web + a real Celery worker +
beat on the embedded default (SQLite, SQLite broker, no Redis), and the printed demo tokens
drive the first certification through the HTTP API."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

from certflow.launcher import die_with_parent
from tests.integration.topology import wait_for
from tests.support import ROOT

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_run(tmp_path: Path, port: int, out: IO[str]) -> subprocess.Popen[bytes]:
    """`certflow run` as a child that dies with this process, however this process dies (an
    interrupted or timed-out test leaves no web, worker or beat behind); it stops its own
    children on the way (they die with it too)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CERTFLOW_VAR_DIR=str(tmp_path / "var"), CERTFLOW_BEAT_INTERVAL_SECONDS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "certflow.cli", "run", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=die_with_parent)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def running(tmp_path: Path):
    port = _free_port()
    out = open(tmp_path / "run.log", "w+")
    proc = start_run(tmp_path, port, out)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base), timeout=60, what=f"certflow run to serve (log: {tmp_path / 'run.log'})")
        text = (tmp_path / "run.log").read_text()
        tokens = dict(re.findall(r"^\s+(\w+)\s+(\S{20,})$", text, re.M))
        yield base, tokens, tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        out.close()


def test_run_serves_the_api_with_a_real_worker_and_stops_cleanly(running) -> None:
    base, tokens, tmp_path = running
    assert {"office", "candidate", "mentor", "committee", "certifier", "coordinator"} <= set(tokens)
    cand = {"Authorization": f"Bearer {tokens['candidate']}"}
    office = {"Authorization": f"Bearer {tokens['office']}"}
    started = httpx.post(f"{base}/api/instances", headers=cand, json={
        "process_id": "certification", "business_key": "APP-RUN-1",
        "data": {"eligibility_route": "hbo_diploma", "motivation": "demo"}})
    assert started.status_code == 201, started.text
    # the confirmation email is a service task: only a real worker gets the process further
    inbox = wait_for(lambda: [t for t in httpx.get(f"{base}/api/inbox", headers=office).json()
                              if t["element_id"] == "check_eligibility"], timeout=60, what="the worker")
    done = httpx.post(f"{base}/api/tasks/{inbox[0]['id']}/complete", headers=office,
                      json={"data": {"eligible": True, "remarks": "diploma seen"}})
    assert done.status_code == 200, done.text
    instance_id = started.json()["id"]
    wait_for(lambda: "invoice_number" in httpx.get(f"{base}/api/instances/{instance_id}", headers=office)
             .json()["data"], timeout=60, what="the invoice job")
    assert list((tmp_path / "var" / "mail" / "new").iterdir())  # the emails went to the maildir
    assert httpx.get(f"{base}/api/inbox").status_code == 403  # no token, no data


def _tree(pid: int) -> set[int]:
    """pid and all its descendants, from /proc."""
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_test_leaves_no_certflow_run_behind(tmp_path: Path) -> None:
    """A stand-in for a test process starts `certflow run` the way the fixture does and is then
    killed with SIGKILL (as a timeout or a Ctrl-C'd CI would): the launcher, web, worker and
    beat all go."""
    port = _free_port()
    stand_in = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path\n"
         "from tests.integration.test_run import start_run\n"
         "tmp = Path(sys.argv[1]); out = open(tmp / 'run.log', 'w+')\n"
         "print(start_run(tmp, int(sys.argv[2]), out).pid, flush=True); time.sleep(600)",
         str(tmp_path), str(port)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        preexec_fn=die_with_parent)
    tree: set[int] = set()
    try:
        assert stand_in.stdout is not None
        launcher = int(stand_in.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _healthy(base), timeout=90, what=f"certflow run to serve (log: {tmp_path / 'run.log'})")
        tree = _tree(launcher)
        assert len(tree) >= 4, tree  # the launcher, web, worker and beat
        stand_in.kill()
        stand_in.wait(10)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and any(_alive(p) for p in tree):
            time.sleep(0.2)
        assert [p for p in tree if _alive(p)] == []
        assert not _healthy(base)
    finally:
        stand_in.kill()
        for pid in tree:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
