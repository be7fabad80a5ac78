"""The JSON API as a client sees it: authentication, deploy, start, the task queue with its
conflicts, who may see which instance, messages and incidents. The app runs in-process
(TestClient) on a fresh SQLite database; jobs run in-process, as a worker would run them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import certflow.bootstrap
from certflow.bootstrap import build_engine
from certflow.store.db import session_scope
from certflow.store.models import Definition
from tests.support import create_user
from certflow.web.app import create_app, get_engine
from tests.support import ROOT, Harness

ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}
APPLICATION = {"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"}


class Api:
    """A TestClient plus people with tokens, and the engine's jobs run on demand."""

    def __init__(self, client: TestClient, harness: Harness) -> None:
        self.client = client
        self.h = harness
        self.engine = harness.engine

    def person(self, username: str, groups: list[str], staff: bool = False, **extra: Any) -> None:
        with session_scope() as session:
            create_user(session, username, username.title() + " Achternaam", groups,
                        is_staff=staff, token=f"token-{username}", **extra)

    @staticmethod
    def auth(username: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer token-{username}"} if username else {}

    def get(self, path: str, who: str | None, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.auth(who), **kw)

    def post(self, path: str, who: str | None, json: Any = None, **kw: Any) -> httpx.Response:
        headers = {**self.auth(who), **kw.pop("headers", {})}
        return self.client.post(path, headers=headers, json=json, **kw)

    def deploy(self, everything: bool = False) -> None:
        """Deploy the certification process (or every process folder) as the process owner
        pia: deploying is a process owner's act, as in the studio."""
        body = {} if everything else {"only": ["certification"]}
        assert self.post("/api/deployments", "pia", body).status_code == 201

    def apply(self, who: str = "cas", key: str = "APP-1") -> str:
        response = self.post("/api/instances", who, {
            "process_id": "certification", "business_key": key,
            "data": {**APPLICATION, "candidate": who}})
        assert response.status_code == 201, response.text
        self.h.run_jobs()
        return str(response.json()["id"])

    def task(self, who: str, element_id: str) -> dict[str, Any]:
        inbox = self.get("/api/inbox", who).json()
        found = [t for t in inbox if t["element_id"] == element_id]
        assert found, f"{who} has no {element_id}; inbox: {[t['element_id'] for t in inbox]}"
        return dict(found[0])

    def do(self, who: str, element_id: str, data: dict[str, Any]) -> None:
        """Find the task in the inbox, claim it if nobody has, complete it, let jobs run."""
        task = self.task(who, element_id)
        if task["assignee"] is None:
            assert self.post(f"/api/tasks/{task['id']}/claim", who).status_code == 200
        done = self.post(f"/api/tasks/{task['id']}/complete", who, {"data": data})
        assert done.status_code == 200, done.text
        self.h.run_jobs()


@contextmanager
def serving() -> Iterator[Api]:
    """The app on the current test database (use with the ``sqlite_url`` fixture)."""
    certflow.bootstrap.engine.cache_clear()
    engine = build_engine()  # no publisher: the test runs jobs itself
    app = create_app()
    app.dependency_overrides[get_engine] = lambda: engine
    try:
        with TestClient(app) as client:
            people = Api(client, Harness(engine))
            people.person("olga", ["office"], staff=True)
            people.person("otto", ["office"], staff=True)
            people.person("cas", ["candidate"], address=ADDRESS)
            people.person("ann", ["candidate"], address=ADDRESS)
            people.person("mila", ["mentor"])
            people.person("pia", ["process_owner"], staff=True)
            yield people
    finally:
        certflow.bootstrap.engine.cache_clear()


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    with serving() as people:
        yield people


@pytest.fixture
def deployed(api: Api) -> Api:
    api.deploy()
    return api


# -- basics ----------------------------------------------------------------------------------
def test_health(api: Api) -> None:
    response = api.get("/api/health", None)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer "}])
def test_unauthenticated_requests_are_refused_clearly(api: Api, headers: dict[str, str]) -> None:
    response = api.client.get("/api/inbox", headers=headers)
    assert response.status_code == 403
    assert "token" in response.json()["error"].lower()


def test_me(api: Api) -> None:
    assert api.get("/api/me", "olga").json() == {"username": "olga", "groups": ["office"], "is_staff": True}


def test_openapi_lists_the_routes(api: Api) -> None:
    paths = api.get("/openapi.json", None).json()["paths"]
    for path in ("/api/health", "/api/deployments", "/api/instances", "/api/instances/{instance_id}",
                 "/api/inbox", "/api/tasks/{task_id}/claim", "/api/tasks/{task_id}/complete",
                 "/api/messages", "/api/incidents", "/api/payments", "/api/payments/camt053",
                 "/api/payments/issues", "/api/invoices/{number}", "/api/invoices/{number}/pdf",
                 "/api/invoices/{number}/ubl", "/api/certificates",
                 "/api/certificates/{certificate_id}/pdf", "/public/register"):
        assert path in paths, path
    assert "application/xml" in paths["/api/payments/camt053"]["post"]["requestBody"]["content"]


def test_request_validation_names_the_field(api: Api) -> None:
    response = api.post("/api/instances", "olga", {"business_key": "X"})
    assert response.status_code == 422
    assert "process_id" in response.json()["fields"]


# -- deploy ----------------------------------------------------------------------------------
def test_deploy_process_owners_only_and_versions(api: Api) -> None:
    assert api.post("/api/deployments", "cas", {}).status_code == 403
    # Office staff neither: deploying is the process owner's act, as in the studio.
    refused = api.post("/api/deployments", "olga", {"only": ["certification"]})
    assert refused.status_code == 403 and "process owners" in refused.json()["error"]
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Definition)) == 0
    first = api.post("/api/deployments", "pia", {"only": ["certification"]})
    assert first.status_code == 201
    assert [(d["process_id"], d["version"], d["created"]) for d in first.json()] == [
        ("certification", 1, True), ("shared/fees.dmn", 1, True), ("shared/vat.dmn", 1, True)]
    again = api.post("/api/deployments", "pia", {"only": ["certification"]}).json()
    assert [(d["version"], d["created"]) for d in again] == [(1, False)] * 3
    assert [d["version"] for d in api.get("/api/definitions", "olga").json()] == [1]
    assert api.get("/api/definitions", "cas").status_code == 403


def test_broken_diagram_is_refused_naming_file_and_element(api: Api, tmp_path: Path) -> None:
    target = tmp_path / "processes"
    shutil.copytree(ROOT / "processes", target)
    bpmn = target / "certification" / "certification.bpmn"
    bpmn.write_text(bpmn.read_text().replace('id="invoicing/create_invoice"', 'id="nope/handler"', 1))
    api.engine.settings = api.engine.settings.model_copy(update={"processes_dir": target})
    response = api.post("/api/deployments", "pia", {"only": ["certification"]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert "certification.bpmn" in error and "[create_invoice]" in error and "nope/handler" in error
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Definition)) == 0


# -- start and the task queue ------------------------------------------------------------------
def test_candidate_starts_only_their_own_application(deployed: Api) -> None:
    response = deployed.post("/api/instances", "cas", {
        "process_id": "certification", "business_key": "APP-1",
        "data": {**APPLICATION, "candidate": "ann"}})
    assert response.status_code == 201
    assert response.json()["started_by"] == "cas"
    view = deployed.get(f"/api/instances/{response.json()['id']}", "olga").json()
    assert view["data"]["candidate"] == "cas"
    again = deployed.post("/api/instances", "cas", {"process_id": "certification", "business_key": "APP-1"})
    assert again.status_code == 409
    unknown = deployed.post("/api/instances", "cas", {"process_id": "nope", "business_key": "X"})
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]


def test_claim_unclaim_assign_complete_and_their_conflicts(deployed: Api) -> None:
    deployed.apply()
    task = deployed.task("olga", "check_eligibility")
    url = f"/api/tasks/{task['id']}"
    assert deployed.get(url, "mila").status_code == 403  # not her group
    assert deployed.post(f"{url}/complete", "mila", {"data": {"eligible": True, "remarks": ""}}).status_code == 403
    assert deployed.post(f"{url}/claim", "olga").json()["assignee"] == "olga"
    second = deployed.post(f"{url}/claim", "otto")
    assert second.status_code == 409 and "olga" in second.json()["error"]
    assert deployed.post(f"{url}/claim", "olga").status_code == 409
    assert deployed.post(f"{url}/complete", "otto", {"data": {"eligible": True, "remarks": ""}}).status_code == 409
    assert deployed.post(f"{url}/unclaim", "cas").status_code == 403
    assert deployed.post(f"{url}/unclaim", "olga").json()["assignee"] is None
    assert deployed.post(f"{url}/unclaim", "olga").status_code == 409
    assert deployed.post(f"{url}/assign", "cas", {"assignee": "otto"}).status_code == 403
    assert deployed.post(f"{url}/assign", "olga", {"assignee": "mila"}).status_code in (409, 422)
    assert deployed.post(f"{url}/assign", "olga", {"assignee": "ghost"}).status_code == 404
    assert deployed.post(f"{url}/assign", "olga", {"assignee": "otto"}).json()["assignee"] == "otto"
    bad = deployed.post(f"{url}/complete", "otto", {"data": {"eligible": "yes", "remarks": ""}})
    assert bad.status_code == 422 and "eligible" in bad.json()["fields"]
    assert deployed.post(f"{url}/complete", "otto", {"data": "nope"}).status_code == 422
    done = deployed.post(f"{url}/complete", "otto", {"data": {"eligible": True, "remarks": "diploma"}})
    assert done.status_code == 200 and done.json()["instance_status"] == "running"
    twice = deployed.post(f"{url}/complete", "otto", {"data": {"eligible": True, "remarks": "diploma"}})
    assert twice.status_code in (404, 409)
    assert deployed.get(url, "otto").status_code == 404


def test_a_candidate_cannot_read_another_candidates_instance(deployed: Api) -> None:
    mine = deployed.apply("cas", "APP-1")
    theirs = deployed.apply("ann", "APP-2")
    assert deployed.get(f"/api/instances/{mine}", "cas").status_code == 200
    for path in (f"/api/instances/{theirs}", f"/api/instances/{theirs}/history"):
        response = deployed.get(path, "cas")
        assert response.status_code == 403 and theirs in response.json()["error"]
    assert [i["business_key"] for i in deployed.get("/api/instances", "cas").json()] == ["APP-1"]
    assert {"APP-1", "APP-2"} <= {i["business_key"] for i in deployed.get("/api/instances", "olga").json()}
    assert deployed.post(f"/api/instances/{mine}/cancel", "cas").status_code == 403
    assert deployed.get("/api/instances/nope", "olga").status_code == 404


def test_messages(deployed: Api) -> None:
    message = {"name": "payment_received", "correlation": {"invoice_number": "2000-000001"}}
    nobody = deployed.post("/api/messages", "olga", message)
    assert nobody.status_code == 404 and "no instance is waiting" in nobody.json()["error"]
    assert deployed.post("/api/messages", "cas", message).status_code == 403
    assert deployed.post("/api/messages", "olga", {"name": "payment_received"}).status_code == 422


def test_incidents_are_for_staff(deployed: Api) -> None:
    assert deployed.get("/api/incidents", "olga").json() == []
    assert deployed.get("/api/incidents", "cas").status_code == 403
    assert deployed.post("/api/incidents/1/retry", "cas").status_code == 403
    assert deployed.post("/api/incidents/999/retry", "olga").status_code == 404


def test_only_processes_open_to_candidates_can_be_started_by_them(api: Api) -> None:
    api.deploy(everything=True)
    refused = api.post("/api/instances", "cas", {"process_id": "register_fee", "business_key": "fee-x", "data": {}})
    assert refused.status_code == 403 and "staff only" in refused.json()["error"]
    opened = api.post("/api/instances", "cas", {"process_id": "certification", "business_key": "APP-OK",
                                                "data": {"eligibility_route": "evc", "motivation": "m"}})
    assert opened.status_code == 201, opened.text
