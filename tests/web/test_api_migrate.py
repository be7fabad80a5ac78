"""``POST /api/instances/{id}/migrate``: a process owner or an admin moves a running case to the
newest version of its process over the JSON API (typed answer), or is refused with the reasons
as JSON and the case stays where it is: 409 naming each element in the way, 409 when there is
nothing newer or the case has ended, 422 for a bad body, 403 for the rest of the staff."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from certflow.engine.facade import Actor
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent
from tests.engine.test_monitor import INSERT_STEP, review_renamed
from tests.engine.test_runtime import edited, office_task, start
from tests.support import FLOW_DIR
from tests.web.test_api import Api, api  # noqa: F401  (fixture)

SYSTEM = Actor.system()


def _case(api: Api) -> str:  # noqa: F811
    api.engine.deploy(SYSTEM, FLOW_DIR)
    api.person("petra", ["process_owner"], staff=True)
    api.person("ada", ["admin"], staff=True)
    instance_id = start(api.h, "K1")
    api.h.run_jobs()
    return instance_id


def _version(api: Api, instance_id: str) -> int:  # noqa: F811
    return int(api.engine.instance(SYSTEM, instance_id).version)


def test_a_process_owner_moves_a_case_to_the_newest_version(api: Api, tmp_path: Path) -> None:  # noqa: F811
    instance_id = _case(api)
    url = f"/api/instances/{instance_id}/migrate"
    nothing_newer = api.post(url, "petra", {})
    assert nothing_newer.status_code == 409 and "already runs on version 1" in nothing_newer.json()["error"]
    api.engine.deploy(SYSTEM, edited(tmp_path, *INSERT_STEP))

    for who in ("olga", "cas"):  # office staff and candidates may not
        assert api.post(url, who, {"reason": "x"}).status_code == 403
    assert "token" in api.post(url, None, {}).json()["error"].lower()  # no token: refused too
    assert api.post(url, "petra", {"reason": "x" * 1001}).status_code == 422
    assert _version(api, instance_id) == 1

    moved = api.post(url, "petra", {"reason": "the stamp step is new"})
    assert moved.status_code == 200, moved.text
    assert moved.json() == {"instance_id": instance_id, "from_version": 1, "to_version": 2}
    assert _version(api, instance_id) == 2
    with session_scope() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "instance_migrated")).all()
        assert event.actor == "petra" and event.detail["reason"] == "the stamp step is new"
    # The case runs on on v2; an admin asking again is told it is on the newest already.
    again = api.post(url, "ada", {})
    assert again.status_code == 409 and "already runs on version 2" in again.json()["error"]
    api.engine.complete(api.h.staff, office_task(api.h), {"approved": False})
    ended = api.post(url, "ada", {})
    assert ended.status_code == 409 and "completed" in ended.json()["error"]


def test_a_refused_move_names_each_element_and_changes_nothing(api: Api, tmp_path: Path) -> None:  # noqa: F811
    instance_id = _case(api)
    api.engine.deploy(SYSTEM, review_renamed(tmp_path))
    refused = api.post(f"/api/instances/{instance_id}/migrate", "ada", {"reason": "try"})
    assert refused.status_code == 409
    body = refused.json()
    assert body["elements"][0] == "review" and (body["current_version"], body["newest_version"]) == (1, 2)
    first = body["refusals"][0]
    assert (first["element_id"], first["element_name"], first["reason"]) == ("review", "Review request", "missing")
    assert first["message"] == "the open element Review request (review) does not exist in version 2"
    assert _version(api, instance_id) == 1
    with session_scope() as session:
        assert not session.scalars(select(AuditEvent).where(AuditEvent.action == "instance_migrated")).all()


def test_the_route_is_typed_in_the_openapi_document(api: Api) -> None:  # noqa: F811
    spec = api.client.get("/openapi.json").json()
    route = spec["paths"]["/api/instances/{instance_id}/migrate"]["post"]
    ok = route["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/Migrated")
    assert route["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/MigrationRefused")
    assert set(spec["components"]["schemas"]["Migrated"]["properties"]) == {"instance_id", "from_version", "to_version"}
