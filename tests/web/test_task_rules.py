"""Who may touch a task, through the API: a task the diagram gives to a person (the
candidate's own dossier, one assessor's verdict) stays that person's: nobody else in the group
can claim, see or complete it, unclaiming never hands it to the group, history shows a
non-staff user only their own actions, and staff reassigning it are held to the rules of the
first assignment (no former mentor, no second seat for the other assessor, not the candidate)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import handlers
from certflow.engine.errors import InvalidInput
from certflow.errors import NotFound
from certflow.engine.facade import Actor
from certflow.settings import get_settings
from certflow.store.db import session_scope
from tests.support import ROOT
from tests.web.test_api import Api, serving

DATA = ROOT / "tests" / "web" / "data"


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    with serving() as people:
        people.engine.deploy(Actor.system(), DATA)
        for name in ("ada", "bob", "eve"):
            people.person(name, ["assessor"])
        people.person("mo", ["assessor", "mentor"])  # also was cas's mentor (see register_with_mentor)
        yield people


def register_with_mentor(api: Api, holder: str, mentor: str) -> None:
    """``holder`` certified and in the register, with ``mentor`` recorded as their mentor."""
    with session_scope() as s:
        def run(operator: str, params: dict[str, Any]) -> dict[str, Any]:
            ctx = handlers.HandlerContext(session=s, now=api.engine.now(), settings=get_settings(),
                                          idempotency_key=f"seed:{operator}:{holder}")
            return handlers.get(operator)(ctx, params)

        cert = run("certificates/issue", {"holder": holder})
        run("register/enter", {"holder": holder, "certificate_id": cert["certificate_id"]})
        run("register/set_relations", {"holder": holder, "mentor": mentor})


def start(api: Api, candidate: str = "cas") -> str:
    response = api.post("/api/instances", "olga", {
        "process_id": "assessing", "business_key": f"A-{candidate}",
        "data": {"candidate": candidate, "assessor_1": "ada", "assessor_2": "bob"}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def open_task(api: Api, instance_id: str, element_id: str) -> dict[str, Any]:
    tasks = api.get(f"/api/instances/{instance_id}", "olga").json()["open_tasks"]
    [task] = [t for t in tasks if t["element_id"] == element_id]
    return dict(task)


def to_verdicts(api: Api, instance_id: str) -> None:
    dossier = open_task(api, instance_id, "dossier")
    done = api.post(f"/api/tasks/{dossier['id']}/complete", "cas", {"data": {"summary": "mine"}})
    assert done.status_code == 200, done.text


# -- the candidate's own task ------------------------------------------------------------------
def test_a_personal_task_is_only_its_holders(api: Api) -> None:
    instance_id = start(api)
    dossier = open_task(api, instance_id, "dossier")
    assert dossier["assignee"] == "cas"
    tid = dossier["id"]
    assert [t["id"] for t in api.get("/api/inbox", "cas").json()] == [tid]
    assert api.get("/api/inbox", "ann").json() == []
    assert api.get(f"/api/tasks/{tid}", "ann").status_code == 403
    assert api.post(f"/api/tasks/{tid}/claim", "ann").status_code == 409
    refused = api.post(f"/api/tasks/{tid}/complete", "ann", {"data": {"summary": "not mine"}})
    assert refused.status_code == 409
    assert open_task(api, instance_id, "dossier")["assignee"] == "cas"


def test_a_group_filter_shows_a_member_the_groups_open_work_not_the_others_personal_tasks(api: Api) -> None:
    """Asking for one's own group's queue must not open what ``/api/tasks/{id}`` refuses: another
    candidate's dossier, another assessor's verdict, with their case data. Staff see it all."""
    cas_case, ann_case = start(api, "cas"), start(api, "ann")
    to_verdicts(api, cas_case)
    ann_dossier = open_task(api, ann_case, "dossier")
    ada_verdict, bob_verdict = open_task(api, cas_case, "assess_1"), open_task(api, cas_case, "assess_2")
    for who, group, others, own in (("cas", "candidate", ann_dossier, []),
                                    ("bob", "assessor", ada_verdict, [bob_verdict["id"]])):
        assert api.get(f"/api/tasks/{others['id']}", who).status_code == 403
        listed = api.get(f"/api/inbox?group={group}", who)
        assert listed.status_code == 200, listed.text
        assert [t["id"] for t in listed.json()] == own
        assert "ann" not in listed.text and "ada" not in listed.text
    assert ann_dossier["id"] in [t["id"] for t in api.get("/api/inbox?group=candidate", "olga").json()]
    assert ada_verdict["id"] in [t["id"] for t in api.get("/api/inbox?group=assessor", "olga").json()]


def test_unclaiming_a_personal_task_never_hands_it_to_the_group(api: Api) -> None:
    instance_id = start(api)
    tid = open_task(api, instance_id, "dossier")["id"]
    for who in ("cas", "olga"):  # neither the holder nor staff can release it to the group
        refused = api.post(f"/api/tasks/{tid}/unclaim", who)
        assert refused.status_code == 409, refused.text
        assert "reassign" in refused.json()["error"]
    assert open_task(api, instance_id, "dossier")["assignee"] == "cas"
    assert api.get("/api/inbox", "ann").json() == []
    assert api.post(f"/api/tasks/{tid}/claim", "ann").status_code == 409


def test_the_candidates_own_task_cannot_be_given_to_someone_else(api: Api) -> None:
    instance_id = start(api)
    tid = open_task(api, instance_id, "dossier")["id"]
    refused = api.post(f"/api/tasks/{tid}/assign", "olga", {"assignee": "ann"})
    assert refused.status_code == 422, refused.text
    assert "cas's own" in refused.json()["error"]
    assert open_task(api, instance_id, "dossier")["assignee"] == "cas"


# -- the assessors -----------------------------------------------------------------------------
def test_one_assessor_cannot_take_over_or_read_the_others_verdict(api: Api) -> None:
    instance_id = start(api)
    to_verdicts(api, instance_id)
    first, second = open_task(api, instance_id, "assess_1"), open_task(api, instance_id, "assess_2")
    assert (first["assignee"], second["assignee"]) == ("ada", "bob")
    assert [t["id"] for t in api.get("/api/inbox", "bob").json()] == [second["id"]]
    assert api.get(f"/api/tasks/{first['id']}", "bob").status_code == 403
    assert api.post(f"/api/tasks/{first['id']}/unclaim", "ada").status_code == 409
    assert api.post(f"/api/tasks/{first['id']}/claim", "bob").status_code == 409
    done = api.post(f"/api/tasks/{first['id']}/complete", "ada",
                    {"data": {"passed": False, "remarks": "secret remark"}})
    assert done.status_code == 200, done.text
    history = api.get(f"/api/instances/{instance_id}/history", "bob")
    assert history.status_code == 200, history.text
    assert "secret remark" not in history.text
    assert {e["actor"] for e in history.json()} <= {"bob"}
    assert "secret remark" in api.get(f"/api/instances/{instance_id}/history", "olga").text


def test_history_shows_a_candidate_their_own_actions_only(api: Api) -> None:
    instance_id = start(api)
    to_verdicts(api, instance_id)
    first = open_task(api, instance_id, "assess_1")
    api.post(f"/api/tasks/{first['id']}/complete", "ada", {"data": {"passed": True,
                                                                    "remarks": "fine work"}})
    events = api.get(f"/api/instances/{instance_id}/history", "cas").json()
    assert events and {e["actor"] for e in events} == {"cas"}
    assert "fine work" not in str(events)


@pytest.mark.parametrize(("assignee", "why"), [
    ("mo", "mo was cas's mentor"),
    ("bob", "the assessors must be different people"),
    ("cas", "cas cannot assess themselves"),
])
def test_reassigning_an_assessor_task_follows_the_first_assignments_rules(
        api: Api, assignee: str, why: str) -> None:
    register_with_mentor(api, "cas", "mo")
    api.person("cas2", ["assessor"])
    instance_id = start(api)
    to_verdicts(api, instance_id)
    tid = open_task(api, instance_id, "assess_1")["id"]
    refused = api.post(f"/api/tasks/{tid}/assign", "olga", {"assignee": assignee})
    if assignee == "cas":  # not even in the assessor group: the group rule speaks first
        assert refused.status_code == 422 and "not in group" in refused.json()["error"]
    else:
        assert refused.status_code == 422, refused.text
        assert why in refused.json()["error"]
    assert open_task(api, instance_id, "assess_1")["assignee"] == "ada"


def test_staff_who_do_not_work_with_the_people_see_no_case_data(api: Api) -> None:
    """The monitor shows process owners and certifiers a case without its personal data; the
    instance, its history, its tasks, a group's queue and its documents showed it all to them
    (they are staff), where the office sees it."""
    from certflow.services import case_documents

    groups = {"petra": "process_owner", "cees": "certifier"}
    for who, group in groups.items():
        api.person(who, [group], staff=True)
    instance_id = start(api)
    with session_scope() as s:
        doc = case_documents.upload(s, Actor("cas", ("candidate",), False), instance_id, "cv.pdf",
                                    b"%PDF-1.4 private cv")
    dossier = open_task(api, instance_id, "dossier")["id"]
    done = api.post(f"/api/tasks/{dossier}/complete", "cas", {"data": {"summary": "my private summary"}})
    assert done.status_code == 200, done.text
    assert api.get(f"/api/instances/{instance_id}", "olga").json()["data"]["summary"] == "my private summary"
    assert "my private summary" in api.get(f"/api/instances/{instance_id}/history", "olga").text
    verdict = open_task(api, instance_id, "assess_1")["id"]
    for who in ("petra", "cees"):
        seen = api.get(f"/api/instances/{instance_id}", who)
        assert seen.status_code == 200 and seen.json()["data"] == {} and seen.json()["open_tasks"] == []
        history = api.get(f"/api/instances/{instance_id}/history", who)
        assert history.status_code == 200 and "my private summary" not in history.text
        assert api.get(f"/api/tasks/{verdict}", who).status_code == 403
        assert api.get("/api/inbox?group=assessor", who).json() == []
        with session_scope() as s, pytest.raises(NotFound):
            case_documents.for_case(s, Actor(who, (groups[who],), True), instance_id)
    with session_scope() as s:
        assert [d.id for d in case_documents.for_case(s, OLGA, instance_id)] == [doc.id]


OLGA = Actor("olga", ("office",), True)


def _escalate(task_id: str) -> None:
    from certflow.store.models import HumanTask

    with session_scope() as s:
        row = s.get(HumanTask, task_id)
        assert row is not None
        row.escalated_to, row.escalated_at = "coordinator", api_now()


def api_now() -> Any:
    from certflow.clock import CLOCK

    return CLOCK.now()


def test_every_hand_over_by_staff_follows_the_first_assignments_rules(api: Api) -> None:
    """Assigning refused it; an escalation's reassignment or take-over, and staff delegating,
    gave a candidate's dossier to another candidate (who then submitted it) and an assessor's
    verdict to the candidate's own mentor."""
    register_with_mentor(api, "cas", "mo")
    instance_id = start(api)
    dossier = open_task(api, instance_id, "dossier")["id"]
    _escalate(dossier)
    refused = api.post(f"/api/escalations/{dossier}/reassign", "olga", {"assignee": "ann", "reason": "late"})
    assert refused.status_code == 422 and "cas's own" in refused.json()["error"]
    refused = api.post(f"/api/escalations/{dossier}/take-over", "olga", {"reason": "late"})
    assert refused.status_code == 422 and "olga is not in group 'candidate'" in refused.json()["error"]
    with pytest.raises(InvalidInput, match="cas's own"):  # the inbox page's Delegate, by staff
        api.engine.delegate(OLGA, dossier, "ann")
    assert open_task(api, instance_id, "dossier")["assignee"] == "cas"
    assert api.post(f"/api/tasks/{dossier}/complete", "ann", {"data": {"summary": "not mine"}}).status_code == 409
    to_verdicts(api, instance_id)
    verdict = open_task(api, instance_id, "assess_1")["id"]
    _escalate(verdict)
    refused = api.post(f"/api/escalations/{verdict}/reassign", "olga", {"assignee": "mo", "reason": "late"})
    assert refused.status_code == 422 and "mo was cas's mentor" in refused.json()["error"]
    with pytest.raises(InvalidInput, match="different people"):
        api.engine.delegate(OLGA, verdict, "bob")
    assert open_task(api, instance_id, "assess_1")["assignee"] == "ada"
    moved = api.post(f"/api/escalations/{verdict}/reassign", "olga", {"assignee": "eve", "reason": "late"})
    assert moved.status_code == 200, moved.text
    assert open_task(api, instance_id, "assess_1")["assignee"] == "eve"


def test_reassigning_to_an_unconflicted_assessor_works_and_then_binds_them(api: Api) -> None:
    register_with_mentor(api, "cas", "mo")
    instance_id = start(api)
    to_verdicts(api, instance_id)
    tid = open_task(api, instance_id, "assess_1")["id"]
    moved = api.post(f"/api/tasks/{tid}/assign", "olga", {"assignee": "eve"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["assignee"] == "eve"
    assert api.get(f"/api/tasks/{tid}", "ada").status_code == 403
    assert api.post(f"/api/tasks/{tid}/complete", "ada", {"data": {"passed": True}}).status_code == 409
    # The other seat is now checked against eve, who holds this one.
    other = open_task(api, instance_id, "assess_2")["id"]
    refused = api.post(f"/api/tasks/{other}/assign", "olga", {"assignee": "eve"})
    assert refused.status_code == 422 and "different people" in refused.json()["error"]
    done = api.post(f"/api/tasks/{tid}/complete", "eve", {"data": {"passed": True}})
    assert done.status_code == 200, done.text
