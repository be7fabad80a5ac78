"""Request bodies are limited by the bytes that arrive, not only by what Content-Length claims:
a too-large body is answered 413 with a clear error, before the JSON parser or the engine see
it, and changes nothing. A 6 MB statement upload to a real server gets its 413 rather than a
connection reset."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Instance
from certflow.web.limits import DEFAULT_LIMIT
from tests.web.test_api import Api, deployed, api  # noqa: F401
from tests.web.test_hostile_scripts import server  # noqa: F401


def _rows() -> tuple[int, int]:
    with session_scope() as s:
        return (int(s.scalar(select(func.count()).select_from(Instance)) or 0),
                int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0))


def _start_body(size: int) -> bytes:
    return json.dumps({"process_id": "certification", "business_key": "BIG",
                       "data": {"motivation": "x" * size}}).encode()


def test_a_json_body_over_the_limit_is_413(deployed: Api) -> None:  # noqa: F811
    before = _rows()
    response = deployed.client.post("/api/instances", content=_start_body(10 * 2**20),
                                    headers={**deployed.auth("olga"), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"error": "request body is larger than 1 MB", "limit": DEFAULT_LIMIT}
    assert _rows() == before


def test_a_chunked_body_is_counted_as_it_arrives(deployed: Api) -> None:  # noqa: F811
    body = _start_body(3 * 2**20)

    def chunks() -> Iterator[bytes]:  # no Content-Length: only counting can stop it
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]

    before = _rows()
    response = deployed.client.post("/api/instances", content=chunks(),
                                    headers={**deployed.auth("olga"), "Content-Type": "application/json"})
    assert response.status_code == 413 and "larger than 1 MB" in response.json()["error"]
    assert _rows() == before


def test_a_message_payload_of_10_mb_never_reaches_the_instance(deployed: Api) -> None:  # noqa: F811
    before = _rows()
    response = deployed.post("/api/messages", "olga", {"name": "payment_received", "business_key": "X",
                                                       "payload": {"scan": "x" * 10 * 2**20}})
    assert response.status_code == 413
    small_but_too_big = deployed.post("/api/messages", "olga", {"name": "payment_received", "business_key": "X",
                                                                "payload": {"scan": "x" * 200_000}})
    assert small_but_too_big.status_code == 422 and small_but_too_big.json()["field"] == "payload"
    assert _rows() == before


def test_a_huge_version_number_is_404(deployed: Api) -> None:  # noqa: F811
    assert deployed.get(f"/api/definitions/certification/versions/{10**30}", "olga").status_code == 404
    assert deployed.get("/api/definitions/certification/versions/99999999999", "olga").status_code == 404


def test_deeply_nested_json_is_a_client_error(deployed: Api) -> None:  # noqa: F811
    body = '{"process_id": "certification", "business_key": "DEEP", "data": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    response = deployed.client.post("/api/instances", content=body.encode(),
                                    headers={**deployed.auth("olga"), "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert _rows()[0] == 0


@pytest.mark.timeout(120)
def test_a_6_mb_statement_gets_413_not_a_connection_reset(server: str) -> None:  # noqa: F811
    xml = b"<?xml version='1.0'?><Document>" + b"<x/>" * (6 * 2**20 // 4) + b"</Document>"
    response = httpx.post(f"{server}/api/payments/camt053", content=xml, timeout=60,
                          headers={"Authorization": "Bearer token-olga", "Content-Type": "application/xml"})
    assert response.status_code == 413 and "larger than 5 MB" in response.json()["error"]
    assert httpx.get(f"{server}/api/health", timeout=5).status_code == 200


def test_incidents_show_the_error_not_the_traceback(deployed: Api) -> None:  # noqa: F811
    from certflow.store.models import Incident

    instance_id = deployed.apply()
    with session_scope() as s:
        s.add(Incident(instance_id=instance_id, task_id="t", element_id="send_invoice", operator="email/send",
                       error="SMTP server refused the message", attempts=5, status="open",
                       traceback='Traceback (most recent call last):\n  File "/srv/certflow/handlers/email.py"',
                       created_at=deployed.engine.now()))
    [incident] = deployed.get("/api/incidents", "olga").json()
    assert incident["error"] == "SMTP server refused the message"
    assert "traceback" not in incident and "/srv/" not in json.dumps(incident)
