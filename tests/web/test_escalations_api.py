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


def _later(delta: timedelta) -> None:
    from certflow.clock import CLOCK
    from certflow.store.db import session_scope

    with session_scope() as s:
        CLOCK.advance(s, delta, allowed=True)


def test_a_process_owner_or_certifier_neither_reads_nor_takes_over_an_escalated_case(sqlite_url: str) -> None:
    """The escalation inbox shows a task's case data: not for the staff who do not see it by
    their role (roles.sees_case_data), who took over the office's eligibility check and decided it."""
    with serving() as api:
        api.person("cor", ["coordinator"], staff=True)
        api.person("cert", ["certifier"], staff=True)
        api.deploy()
        api.apply("cas", "APP-1")
        _later(timedelta(days=9))  # the office's eligibility check (due in 5 days) escalates
        assert api.engine.sweep_escalations() > 0
        [item] = api.get("/api/escalations?group=coordinator", "cor").json()
        task_id = item["task"]["id"]
        for who in ("pia", "cert"):
            listed = api.get("/api/escalations?group=coordinator", who)
            assert listed.status_code == 403 and "not in group 'coordinator'" in listed.json()["error"]
            assert api.get("/api/escalations", who).json() == []  # nothing escalated to their groups
            assert api.get(f"/api/escalations/{task_id}", who).status_code == 403
            refused = api.post(f"/api/escalations/{task_id}/take-over", who, {"reason": "mine now"})
            assert refused.status_code == 403
            assert api.post(f"/api/escalations/{task_id}/extend", who,
                            {"due": "P7D", "reason": "x"}).status_code == 403
        assert api.get(f"/api/tasks/{task_id}", "olga").json()["assignee"] != "pia"
        # The coordinator the escalation went to still reads it, and the office (it sees case data).
        assert api.get(f"/api/escalations/{task_id}", "cor").status_code == 200
        assert api.get("/api/escalations?group=coordinator", "olga").status_code == 200


def test_a_coordinator_reassigns_a_mentors_review_but_does_not_take_it_over(sqlite_url: str) -> None:
    """Take-over handed a coordinator a mentor's dossier review, which they then completed; it is
    now held to the task's group, as a reassignment is."""
    from sqlalchemy import select

    from certflow.store.billing import Invoice
    from certflow.store.db import session_scope

    with serving() as api:
        api.person("cor", ["coordinator"], staff=True)
        api.person("max", ["mentor"])
        api.person("cora", ["coordinator", "mentor"], staff=True)
        api.deploy()
        api.apply("cas", "APP-1")
        api.do("olga", "check_eligibility", {"eligible": True, "remarks": "ok"})
        with session_scope() as s:
            invoice = s.scalars(select(Invoice).where(Invoice.customer_username == "cas")).one()
            number, amount = invoice.number, str(invoice.gross_total)
        paid = api.post("/api/payments", "olga", {"invoice_number": number, "amount": amount, "external_id": "p1"})
        assert paid.status_code < 300, paid.text
        api.h.run_jobs()
        api.do("olga", "assign_mentor", {"mentor": "mila"})
        api.do("cas", "write_dossier", {"knowledge": "K", "tasks": "T", "competences": "C", "hours_spent": 35})
        task = api.task("mila", "review_dossier")
        _later(timedelta(days=16))
        api.engine.sweep_escalations()
        assert task["id"] in [i["task"]["id"] for i in api.get("/api/escalations", "cor").json()]
        refused = api.post(f"/api/escalations/{task['id']}/take-over", "cor", {"reason": "I'll do it"})
        assert refused.status_code == 422 and refused.json()["error"] == "cor is not in group 'mentor'"
        assert api.post(f"/api/tasks/{task['id']}/complete", "cor",
                        {"data": {"approved": True, "feedback": "not a mentor"}}).status_code != 200
        assert api.get(f"/api/escalations/{task['id']}", "cor").json()["task"]["assignee"] == "mila"
        # A coordinator who is a mentor too may take it over (then reassign it on: it stays hers).
        taken = api.post(f"/api/escalations/{task['id']}/take-over", "cora", {"reason": "mila is away"})
        assert taken.status_code == 200, taken.text
        assert taken.json()["task"]["assignee"] == "cora"
        # The coordinator's own work stays: reassigning to a mentor.
        _later(timedelta(days=16))
        api.engine.sweep_escalations()
        moved = api.post(f"/api/escalations/{task['id']}/reassign", "cor", {"assignee": "max", "reason": "away"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["task"]["assignee"] == "max"
