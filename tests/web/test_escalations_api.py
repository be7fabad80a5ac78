"""The escalation inbox over HTTP: a coordinator sees what escalated, why and since when, with
the reminder history, and reassigns, extends (with a reason) or takes over in one request."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.engine.test_escalation import EASTER, local, processes, travel
from tests.support import MUTATION_RUN
from tests.web.test_api import Api, serving


# A mutant that makes the sweep loop for ever fails in seconds here, not at mutmut's CPU limit
# (minutes per mutant); the normal suite keeps its usual limit.
pytestmark = pytest.mark.timeout(20 if MUTATION_RUN else 300)


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from certflow.settings import reset_settings

    monkeypatch.setenv("CERTFLOW_PROCESSES_DIR", str(processes(tmp_path)))
    reset_settings()
    with serving() as people:
        for name, groups, staff in [("ada", ["assessor"], False), ("abe", ["assessor"], False),
                                    ("cor", ["coordinator"], True)]:
            people.person(name, groups, staff)
        people.deploy(everything=True)
        yield people


def test_the_coordinator_works_the_escalation_inbox_over_http(api: Api) -> None:
    travel(local(EASTER + timedelta(days=8), 9))
    started = api.post("/api/instances", "olga", {"process_id": "casework", "business_key": "C-1",
                                                   "data": {"assessor": "ada", "candidate": "cas"}})
    assert started.status_code == 201, started.text
    travel(local(EASTER + timedelta(days=12), 9))
    assert api.engine.sweep_escalations() >= 2
    listed = api.get("/api/escalations", "cor").json()
    [item] = listed
    assert item["escalated_to"] == "coordinator" and item["escalated_since"]
    assert "passed" in item["why"]
    assert [h["action"] for h in item["history"]] == ["escalation_reminder", "task_escalated"]
    assert item["history"][0]["detail"]["planned_at"] < item["history"][0]["at"]
    task_id = item["task"]["id"]
    assert api.get("/api/escalations", "ada").json() == []  # not a coordinator
    assert api.post(f"/api/escalations/{task_id}/reassign", "ada", {"assignee": "abe"}).status_code == 403
    refused = api.post(f"/api/escalations/{task_id}/extend", "cor", {"due": "5 werkdagen"})
    assert refused.status_code == 422 and "reason" in refused.json()["fields"]
    bad = api.post(f"/api/escalations/{task_id}/extend", "cor", {"due": "soon", "reason": "x"})
    assert bad.status_code == 422 and "werkdagen" in bad.json()["error"]
    extended = api.post(f"/api/escalations/{task_id}/extend", "cor",
                        {"due": "3 werkdagen", "reason": "assessor back on Monday"})
    assert extended.status_code == 200, extended.text
    assert extended.json()["task"]["escalation_level"] == 0
    assert api.get("/api/escalations", "cor").json() == []
    history = api.get(f"/api/instances/{started.json()['id']}/history", "olga").json()
    assert [h["detail"]["reason"] for h in history if h["action"] == "escalation_extended"] == ["assessor back on Monday"]
