"""Observability across real processes (PostgreSQL + Redis + a Celery worker and beat): the
request id of an HTTP request shows on the worker's JSON log lines for the job it caused, and
worker and beat serve their own /metrics (the worker's adds up its prefork children)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from certflow.bootstrap import build_engine
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.web.app import create_app, get_engine
from tests.integration.topology import Topology, wait_for
from tests.support import FLOW_DIR, Harness, create_user
from tests.web.test_ops import samples
from worker.app import make_app, make_publisher

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stack(pg_url: str, redis_url: str) -> Iterator[tuple[Harness, Topology, TestClient]]:
    settings = get_settings()
    harness = Harness(build_engine(make_publisher(make_app(settings))))
    harness.engine.deploy(harness.staff, FLOW_DIR)
    with session_scope() as s:
        create_user(s, "olga", "Olga", ["office"], is_staff=True, token="token-olga")
    app = create_app()
    app.dependency_overrides[get_engine] = lambda: harness.engine
    topology = Topology(settings.var_dir, {"CERTFLOW_LOG_FORMAT": "json"})
    try:
        with TestClient(app) as client:
            yield harness, topology, client
    finally:
        topology.stop(wait=False)


def _json_lines(topology: Topology, name: str) -> list[dict[str, Any]]:
    lines = []
    for raw in (topology.var / f"{name}.log").read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def test_request_id_reaches_the_worker_log_and_worker_and_beat_serve_metrics(stack) -> None:
    harness, topology, client = stack
    worker_port, beat_port = _free_port(), _free_port()
    topology.env["CERTFLOW_METRICS_PORT"] = str(worker_port)
    topology.worker()
    topology.env["CERTFLOW_METRICS_PORT"] = str(beat_port)
    topology.beat()
    started = client.post("/api/instances", headers={"Authorization": "Bearer token-olga",
                                                     "X-Request-ID": "req-integration-1"},
                          json={"process_id": "flow", "business_key": "K1", "data": {"key": "K1"}})
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]
    wait_for(lambda: [t for t in harness.engine.inbox(harness.staff) if t.element_id == "review"],
             timeout=60, what="the worker to run make_ref", topology=topology)

    def job_lines() -> list[dict[str, Any]]:
        return [line for line in _json_lines(topology, "worker")
                if line.get("request_id") == "req-integration-1" and line.get("job_id")]

    lines = wait_for(job_lines, what="the worker's log line for the job", topology=topology)
    assert all(line["instance_id"] == instance_id and line["process"] == "worker" for line in lines)
    assert any(line.get("handler") == "test/echo" and line.get("outcome") == "done" for line in lines)

    def scrape(port: int) -> dict[Any, float]:
        try:
            return samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
        except httpx.HTTPError:
            return {}

    done = ("certflow_jobs_total", (("handler", "test/echo"), ("outcome", "done")))
    worker = wait_for(lambda: (m := scrape(worker_port)).get(done) and m, what="worker metrics", topology=topology)
    assert worker[("certflow_job_seconds_count", (("handler", "test/echo"),))] >= 1
    assert worker[("certflow_advance_seconds_count", ())] >= 1
    wait_for(lambda: scrape(worker_port).get(("certflow_ticks_total", ()), 0) >= 1, what="a tick run", topology=topology)
    wait_for(lambda: scrape(beat_port).get(("certflow_beat_ticks_sent_total", ()), 0) >= 1,
             what="beat's metrics", topology=topology)
