"""Request bodies are limited by the bytes that arrive, not only by what Content-Length claims:
a too-large body is answered 413 with a clear error, before the JSON parser or the engine see
it, and changes nothing. A 6 MB statement upload to a real server gets its 413 rather than a
connection reset."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import params
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Instance
from certflow.web.app import create_app
from certflow.web.json_bodies import MAX_JSON_DEPTH, JsonRoute
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


def test_a_huge_version_number_is_422_naming_it(deployed: Api) -> None:  # noqa: F811
    """Past the database's integer (2**31 - 1), as every id in a path (see below)."""
    for huge in (10**30, 99999999999):
        response = deployed.get(f"/api/definitions/certification/versions/{huge}", "olga")
        assert (response.status_code, list(response.json()["fields"])) == (422, ["version"])
    assert deployed.get(f"/api/definitions/certification/versions/{2**31 - 1}", "olga").status_code == 404


def test_deeply_nested_json_is_refused_naming_the_limit(deployed: Api) -> None:  # noqa: F811
    for depth in (100_000, MAX_JSON_DEPTH):  # past the parser's own limit, and just past ours
        body = ('{"process_id": "certification", "business_key": "DEEP", "data": {"x": '
                + "[" * depth + "]" * depth + "}}")
        response = deployed.client.post("/api/instances", content=body.encode(),
                                        headers={**deployed.auth("olga"), "Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"].startswith(f"JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
        assert response.json()["limit"] == MAX_JSON_DEPTH
    assert "(at body.data.x" in response.json()["error"]  # where it is, when the parser got there
    assert _rows()[0] == 0
    ok = {"process_id": "certification", "business_key": "OK", "data": {"x": [[[["fine"]]]]}}
    assert deployed.client.post("/api/instances", json=ok, headers=deployed.auth("olga")).status_code < 500


def _routes_with_json_bodies() -> list[APIRoute]:
    """Every route that takes a body other than a form (pages take forms and uploads)."""
    return [route for route in create_app().routes
            if isinstance(route, APIRoute) and route.body_field is not None
            and not isinstance(route.body_field.field_info, params.Form)]


def _json_routes() -> list[tuple[str, str]]:
    return sorted((method, route.path) for route in _routes_with_json_bodies() for method in route.methods)


def test_every_json_route_reads_its_body_through_the_checks() -> None:
    routes = _routes_with_json_bodies()
    assert len(routes) >= 8
    assert [r.path for r in routes if not isinstance(r, JsonRoute)] == []


@pytest.mark.parametrize(("method", "path"), _json_routes())
def test_every_json_route_refuses_unreadable_bodies_clearly(deployed: Api, method: str,  # noqa: F811
                                                            path: str) -> None:
    url = re.sub(r"\{[^}]+\}", "x", path)
    before = _rows()

    def send(content: bytes, content_type: str) -> httpx.Response:
        return deployed.client.request(method, url, content=content,
                                       headers={**deployed.auth("olga"), "Content-Type": content_type})
    deep = send(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json")
    assert deep.status_code == 400 and f"deeper than {MAX_JSON_DEPTH} levels" in deep.json()["error"]
    big = send(b'{"a": "' + b"x" * (DEFAULT_LIMIT + 1) + b'"}', "application/json")
    assert big.status_code == 413 and big.json()["error"] == "request body is larger than 1 MB"
    text = send(b'{"a": 1}', "text/plain")
    assert text.status_code == 415, text.text
    assert text.json()["error"] == "the body must be JSON (Content-Type: application/json), not text/plain"
    form = send(b"a=1", "application/x-www-form-urlencoded")
    assert form.status_code == 415 and "application/x-www-form-urlencoded" in form.json()["error"]
    for body, kind in ((b"[1, 2]", "an array"), (b'"hello"', "a string"), (b"42", "a number"),
                       (b"null", "null")):
        refused = send(body, "application/json")
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["error"] == f"the body must be a JSON object ({{...}}), not {kind}"
    empty = send(b"", "application/json")
    assert empty.status_code == 422 and "no body" in empty.json()["error"]
    assert _rows() == before


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


def _int_parameters() -> list[tuple[str, str, list[object]]]:
    from fastapi.dependencies.models import Dependant

    found: list[tuple[str, str, list[object]]] = []

    def walk(route: str, dependant: Dependant) -> None:
        for param in dependant.path_params + dependant.query_params:
            if "int" in str(param.field_info.annotation):
                found.append((route, param.name, list(param.field_info.metadata)))
        for sub in dependant.dependencies:
            walk(route, sub)

    for route in create_app().routes:
        if isinstance(route, APIRoute):
            walk(route.path, route.dependant)
    return found


def test_every_whole_number_in_a_path_or_query_is_bounded() -> None:
    """An id of 99999999999999999999 overflowed the database driver (a 500): every int a
    route takes from its path or query has an upper bound, so FastAPI answers 422 instead."""
    unbounded = [(route, name) for route, name, bounds in _int_parameters()
                 if not any(getattr(b, "le", None) is not None or getattr(b, "lt", None) is not None
                            for b in bounds)]
    assert _int_parameters() and unbounded == []


def test_an_over_large_incident_id_is_a_422_naming_it(api: Api) -> None:  # noqa: F811
    """/api/incidents/99999999999999999999/retry overflowed the driver: a 500."""
    response = api.post("/api/incidents/99999999999999999999/retry", "olga")
    assert (response.status_code, list(response.json()["fields"])) == (422, ["incident_id"])


@pytest.mark.parametrize("number", ["1e308", "1e999", "NaN", "-Infinity", "10000000000000001"])
def test_a_number_that_is_not_finite_or_absurd_is_a_422_naming_it(deployed: Api, number: str) -> None:  # noqa: F811
    """Task and start data are free-form JSON: 1e308 was stored as a 309-digit integer, and
    Python's JSON reads NaN and Infinity, which no database column takes."""
    before = _rows()
    response = deployed.client.post("/api/instances", headers={**deployed.auth("cas"), "Content-Type": "application/json"},
                                    content='{"process_id": "certification", "business_key": "N", "data": '
                                            '{"candidate": "cas", "eligibility_route": "hbo_diploma", '
                                            f'"motivation": "m", "extra": {{"n": [{number}]}}}}}}')
    assert (response.status_code, response.json()["field"]) == (422, "data.extra.n.0")
    assert _rows() == before


def test_the_dossier_s_hours_have_a_maximum() -> None:
    from jsonschema import Draft202012Validator

    from certflow.settings import ROOT

    schema = json.loads((ROOT / "processes/certification/forms/dossier.json").read_text())
    assert not Draft202012Validator(schema).is_valid({"knowledge": "k", "tasks": "t", "competences": "c",
                                                      "hours_spent": 1e308})
