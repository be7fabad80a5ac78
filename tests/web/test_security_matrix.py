"""The security matrix: every route in /openapi.json x every role x own/other object, checked
against ONE permission table (``RULES``). A route missing from the table fails the test, so a new
route cannot ship without saying who may call it.

Roles: ``anonymous`` (no token), ``unknown`` (a token nobody was given), ``revoked`` and
``expired`` (tokens of the staff user olga, revoked / past their expiry), ``cas`` (a candidate,
asking about her own application, invoice and certificate), ``ann`` (another candidate, asking
about cas's objects), ``olga`` (staff). A call counts as *refused* when it
is answered 401/403, *allowed* otherwise; a 5xx fails whatever the rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from certflow.store.db import session_scope
from tests.web.test_api import Api, serving

ROLES = ("anonymous", "unknown", "revoked", "expired", "cas", "ann", "olga", "petra")
# Who may call each route. public: anyone; user: any signed-in user (listings are filtered to
# what the user may see); owner: staff, or the candidate the object belongs to; staff: staff;
# process_owner: process owners (and admins), not the rest of the staff.
RULES: dict[str, str] = {
    "GET /api/health": "public",
    "GET /public/register": "public",
    "GET /api/me": "user",
    "GET /api/instances": "user",
    "GET /api/inbox": "user",
    "GET /api/certificates": "user",
    "POST /api/instances": "user",
    "GET /api/instances/{instance_id}": "owner",
    "GET /api/instances/{instance_id}/history": "owner",
    "GET /api/invoices/{number}": "owner",
    "GET /api/invoices/{number}/pdf": "owner",
    "GET /api/invoices/{number}/ubl": "owner",
    "GET /api/certificates/{certificate_id}/pdf": "owner",
    # Deploying changes what every new case runs: the process owner's act, as in the studio.
    "POST /api/deployments": "process_owner",
    "GET /api/definitions": "staff",
    "GET /api/definitions/{process_id}/versions/{version}": "staff",
    "POST /api/instances/{instance_id}/cancel": "staff",
    "POST /api/instances/{instance_id}/migrate": "process_owner",
    # The object is the office's task on cas's application: not the candidate's to touch.
    "GET /api/tasks/{task_id}": "staff",
    "POST /api/tasks/{task_id}/claim": "staff",
    "POST /api/tasks/{task_id}/unclaim": "staff",
    "POST /api/tasks/{task_id}/assign": "staff",
    "POST /api/tasks/{task_id}/complete": "staff",
    "GET /api/escalations": "user",
    "GET /api/escalations/{task_id}": "staff",
    "POST /api/escalations/{task_id}/reassign": "staff",
    "POST /api/escalations/{task_id}/extend": "staff",
    "POST /api/escalations/{task_id}/take-over": "staff",
    "POST /api/messages": "staff",
    "GET /api/incidents": "staff",
    "POST /api/incidents/{incident_id}/{action}": "staff",
    "POST /api/payments": "staff",
    "POST /api/payments/camt053": "staff",
    "GET /api/payments/issues": "staff",
}
ALLOWED = {
    "public": set(ROLES),
    "user": {"cas", "ann", "olga", "petra"},
    "owner": {"cas", "olga", "petra"},
    "staff": {"olga", "petra"},
    "process_owner": {"petra"},
}
# Calls that change something run last, on objects nothing else needs afterwards.
CHANGING = ("/claim", "/unclaim", "/assign", "/complete", "/cancel")  # in this order


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, dict[str, str]]]:
    from certflow.bootstrap import create_schema
    from certflow.settings import reset_settings
    from certflow.store.db import reset_engines
    from tests.conftest import _use

    tmp = tmp_path_factory.mktemp("matrix")
    with pytest.MonkeyPatch.context() as monkeypatch:
        url = f"sqlite:///{tmp / 'matrix.sqlite'}"
        _use(monkeypatch, tmp / "var", url)
        create_schema(url)
        with serving() as api:
            api.deploy()
            yield api, _objects(api)
        reset_engines()
        reset_settings()


def _objects(api: Api) -> dict[str, str]:
    """cas's objects: an application past eligibility (so it has an invoice), the office task of a
    second application, a certificate."""
    from certflow.services import access
    from certflow.store.register import Certificate

    api.person("petra", ["office", "process_owner"], staff=True)
    instance_id = api.apply("cas", "APP-1")
    api.do("olga", "check_eligibility", {"eligible": True, "remarks": "ok"})
    number = api.get(f"/api/instances/{instance_id}", "olga").json()["data"]["invoice_number"]
    second = api.apply("cas", "APP-2")
    task_id = api.task("olga", "check_eligibility")["id"]
    with session_scope() as s:
        _, revoked = access.create_token(s, "olga", "matrix", token="token-revoked")
        access.revoke_token(s, revoked.id)
        access.create_token(s, "olga", "matrix", valid_for=timedelta(hours=1),
                            now=datetime(2000, 1, 1, tzinfo=timezone.utc), token="token-expired")
        certificate = Certificate(idempotency_key="matrix", holder="cas", register_number="RL-MATRIX",
                                  valid_from=date(2026, 1, 1), valid_until=date(2031, 1, 1),
                                  created_at=api.engine.now())
        s.add(certificate)
        s.flush()
        certificate_id = certificate.id
    return {"instance_id": instance_id, "cancel_instance_id": second, "task_id": task_id,
            "number": number, "certificate_id": certificate_id, "process_id": "certification",
            "version": "1", "incident_id": "1", "action": "retry"}


def _request(api: Api, route: str, role: str, objects: dict[str, str]) -> httpx.Response:
    method, template = route.split(" ", 1)
    path = template.format(**{**objects, "instance_id": objects["cancel_instance_id"]}
                           if template.endswith("/cancel") else objects)
    headers = {"anonymous": {}, "unknown": {"Authorization": "Bearer token-nobody-was-given"}}.get(
        role, api.auth(role))
    kwargs: dict[str, Any] = {"headers": headers}
    body = _bodies(role).get(route)
    if isinstance(body, bytes):
        kwargs["content"], kwargs["headers"] = body, {**headers, "Content-Type": "application/xml"}
    elif body is not None:
        kwargs["json"] = body
    return api.client.request(method, path, **kwargs)


def _bodies(role: str) -> dict[str, Any]:
    """Bodies valid enough to get past validation, so the answer is about permission."""
    return {
        "POST /api/instances": {"process_id": "certification", "business_key": f"M-{role}",
                                "data": {"candidate": role, "eligibility_route": "hbo_diploma",
                                         "motivation": "matrix"}},
        "POST /api/deployments": {"only": ["certification"]},
        "POST /api/instances/{instance_id}/migrate": {"reason": "matrix"},
        "POST /api/tasks/{task_id}/assign": {"assignee": "olga"},
        "POST /api/escalations/{task_id}/reassign": {"assignee": "olga", "reason": "matrix"},
        "POST /api/escalations/{task_id}/extend": {"due": "5 werkdagen", "reason": "matrix"},
        "POST /api/escalations/{task_id}/take-over": {"reason": "matrix"},
        "POST /api/tasks/{task_id}/complete": {"data": {"eligible": False, "remarks": "matrix"}},
        "POST /api/messages": {"name": "payment_received", "business_key": "nobody-waits"},
        "POST /api/payments": {"invoice_number": "1999-000001", "amount": "1.00", "external_id": f"m-{role}"},
        "POST /api/payments/camt053": b"<?xml version='1.0'?><Document/>",
    }


def _ordered(routes: list[str]) -> list[str]:
    def rank(route: str) -> int:
        return next((n + 1 for n, end in enumerate(CHANGING) if route.endswith(end)), 0)

    return sorted(routes, key=lambda r: (rank(r), r))


def test_every_route_has_a_rule(world: tuple[Api, dict[str, str]]) -> None:
    api, _ = world
    spec = api.client.get("/openapi.json").json()
    routes = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops}
    assert routes - set(RULES) == set(), "routes without a rule in RULES"
    assert set(RULES) - routes == set(), "rules for routes that no longer exist"


def test_the_matrix(world: tuple[Api, dict[str, str]]) -> None:
    api, objects = world
    wrong = []
    for route in _ordered(list(RULES)):
        for role in ROLES:
            response = _request(api, route, role, objects)
            assert response.status_code < 500, (route, role, response.text)
            allowed = response.status_code not in (401, 403)
            if allowed != (role in ALLOWED[RULES[route]]):
                wrong.append(f"{route} as {role}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)
