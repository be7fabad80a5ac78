"""The escalation inbox page as a coordinator and an office manager use it: what escalated,
why and since when, its reminders; reassign, extend (a reason required) and take over, each
one step, refusals shown per field and changing nothing; overdue tasks not yet escalated
below. Nobody outside those roles reaches it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from certflow.services import access
from certflow.store.db import session_scope
from tests.engine.test_escalation import EASTER, local, processes, travel
from tests.web.pages_support import PASSWORD, Browser
from tests.web.test_api import Api, serving


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from certflow.settings import reset_settings

    monkeypatch.setenv("CERTFLOW_PROCESSES_DIR", str(processes(tmp_path)))
    reset_settings()
    with serving() as people:
        for name, groups, staff in [("ada", ["assessor"], False), ("abe", ["assessor"], False),
                                    ("cor", ["coordinator"], True), ("mo", ["office_manager"], True)]:
            people.person(name, groups, staff)
        with session_scope() as s:
            for name in ("ada", "cor", "mo", "olga"):
                access.set_password(s, name, PASSWORD)
        people.deploy(everything=True)
        yield people


def browser(api: Api, who: str) -> Browser:
    b = Browser(TestClient(api.client.app))
    b.sign_in(f"{who}@example.org")
    return b


def escalate_one(api: Api, key: str = "C-1") -> str:
    travel(local(EASTER + timedelta(days=8), 9))
    started = api.post("/api/instances", "olga", {"process_id": "casework", "business_key": key,
                                                   "data": {"assessor": "ada", "candidate": "cas"}})
    assert started.status_code == 201, started.text
    travel(local(EASTER + timedelta(days=12), 9))
    assert api.engine.sweep_escalations() >= 2
    [item] = api.get("/api/escalations", "cor").json()
    return str(item["task"]["id"])


def test_the_coordinator_sees_what_escalated_why_and_since_when(api: Api) -> None:
    task_id = escalate_one(api)
    cor = browser(api, "cor")
    listed = cor.get("/escalations")
    assert listed.status_code == 200
    assert f'href="/escalations/{task_id}"' in listed.text and "C-1" in listed.text
    assert "naar Coördinator" in listed.text
    assert '<a href="/escalations" aria-current="page">Escalaties</a>' in listed.text
    page = cor.get(f"/escalations/{task_id}").text
    assert "Herinnering verstuurd" in page and "Geëscaleerd" in page
    assert "is verstreken" in page and "Geëscaleerd sinds" in page
    assert browser(api, "ada").get("/escalations").status_code == 403
    assert "Escalaties" not in browser(api, "olga").get("/inbox").text.split("<main")[0]


def test_extend_needs_a_reason_and_a_valid_term_then_leaves_the_list(api: Api) -> None:
    task_id = escalate_one(api)
    cor = browser(api, "cor")
    form = f"/escalations/{task_id}"
    no_reason = cor.post(f"{form}/extend", {"due": "5 werkdagen", "reason": ""}, form_page=form)
    assert no_reason.status_code == 422 and 'id="reason-error"' in no_reason.text
    assert "Geef aan waarom" in no_reason.text
    bad = cor.post(f"{form}/extend", {"due": "soon", "reason": "holiday"}, form_page=form)
    assert bad.status_code == 422 and 'id="due-error"' in bad.text
    assert 'value="soon"' in bad.text  # what was typed stays
    assert len(api.get("/api/escalations", "cor").json()) == 1  # nothing changed
    done = cor.post(f"{form}/extend", {"due": "3 werkdagen", "reason": "assessor back Monday"},
                    form_page=form)
    assert done.status_code == 200 and "De termijn is verlengd" in done.text
    assert "Er is niets naar u geëscaleerd." in done.text
    history = api.get(f"/api/tasks/{task_id}", "olga").json()
    assert history["escalation_level"] == 0


def test_reassign_and_take_over_in_one_step(api: Api) -> None:
    task_id = escalate_one(api)
    cor = browser(api, "cor")
    form = f"/escalations/{task_id}"
    unknown = cor.post(f"{form}/reassign", {"assignee": "nobody"}, form_page=form)
    assert unknown.status_code == 422 and 'id="assignee-error"' in unknown.text
    empty = cor.post(f"{form}/reassign", {"assignee": ""}, form_page=form)
    assert empty.status_code == 422 and "gebruikersnaam" in empty.text
    moved = cor.post(f"{form}/reassign", {"assignee": "abe", "reassign_reason": "ada is ill"},
                     form_page=form)
    assert moved.status_code == 200 and "anders toegewezen" in moved.text
    assert api.get(f"/api/tasks/{task_id}", "olga").json()["assignee"] == "abe"
    # No longer escalated: the page says so, and its actions are gone.
    after = cor.get(form).text
    assert "niet meer geëscaleerd" in after and "/take-over" not in after


def test_the_office_manager_gets_the_second_level_and_sees_overdue_tasks(api: Api) -> None:
    task_id = escalate_one(api)
    travel(local(EASTER + timedelta(days=16), 9))
    api.engine.sweep_escalations()  # two working days later: the second level
    started = api.post("/api/instances", "olga", {"process_id": "casework", "business_key": "C-2",
                                                   "data": {"assessor": "ada", "candidate": "cas"}})
    assert started.status_code == 201
    travel(local(EASTER + timedelta(days=23), 9))  # C-2 is overdue; no sweep ran since
    mo = browser(api, "mo")
    listed = mo.get("/escalations").text
    assert f'href="/escalations/{task_id}"' in listed
    overdue = listed.split("Te laat, niet naar u geëscaleerd")[-1]
    assert "C-2" in overdue and task_id not in overdue
    # The assessment is an assessor's work: an office manager who is none may not take it over,
    # and is not offered to (a form that could only be refused).
    assert f"/escalations/{task_id}/take-over" not in mo.get(f"/escalations/{task_id}").text
    refused = mo.post(f"/escalations/{task_id}/take-over", {"take_over_reason": "I will do it"},
                      form_page=f"/escalations/{task_id}")
    assert refused.status_code == 422 and "mo zit niet in de groep" in refused.text
    assert api.get(f"/api/tasks/{task_id}", "olga").json()["assignee"] == "ada"
    api.person("mia", ["office_manager", "assessor"], True)  # one who is an assessor too may
    with session_scope() as s:
        access.set_password(s, "mia", PASSWORD)
    assert f"/escalations/{task_id}/take-over" in browser(api, "mia").get(f"/escalations/{task_id}").text
    taken = browser(api, "mia").post(f"/escalations/{task_id}/take-over", {"take_over_reason": "I will do it"},
                                     form_page=f"/escalations/{task_id}")
    assert taken.status_code == 200 and "De taak is nu van u" in taken.text
    assert api.get(f"/api/tasks/{task_id}", "olga").json()["assignee"] == "mia"
