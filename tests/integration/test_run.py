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
from pathlib import Path

import httpx
import pytest

from tests.integration.topology import wait_for
from tests.support import ROOT

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def running(tmp_path: Path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CERTFLOW_VAR_DIR=str(tmp_path / "var"), CERTFLOW_BEAT_INTERVAL_SECONDS="1", PYTHONPATH=str(ROOT))
    out = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "certflow.cli", "run", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=60, what=f"certflow run to serve (log: {tmp_path / 'run.log'})")
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
