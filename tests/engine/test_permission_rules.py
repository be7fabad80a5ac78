"""Who may see, claim, release, complete or start what, and what each refusal says, asked of
the rules themselves (certflow.engine.queue, certflow.engine.rules) for every kind of person: the
assignee, someone else in the group, an outsider, staff. No database: a task is the columns
the rules read. tests/engine/test_queue_rules.py walks the same rules through the engine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from certflow.engine import queue, rules
from certflow.engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from certflow.engine.facade import Actor

NOW = datetime(2026, 3, 11, 9, 0, tzinfo=timezone.utc)
ALICE = Actor("alice", ("office",))
BOB = Actor("bob", ("office", "mentor"))
MILA = Actor("mila", ("mentor",))
STAFF = Actor("olga", (), True)


def task(assignee: str | None = None, group: str | None = "office", **columns: Any) -> Any:
    row = {"id": "t1", "instance_id": "i1", "process_id": "queue", "business_key": "Q1",
           "element_id": "soon", "title": "Soon", "candidate_group": group, "assignee": assignee,
           "form": None, "priority": 0, "due_at": None, "created_at": NOW, "context": None,
           "escalation_level": None, "next_escalation_at": None, "escalated_to": None,
           "escalated_at": None, "claimed_at": None}
    return SimpleNamespace(**{**row, **columns})


# -- seeing a task ------------------------------------------------------------------------------
@pytest.mark.parametrize(("entry", "actor"), [
    (task(), ALICE), (task(), BOB),                     # unclaimed: the whole group
    (task("alice"), ALICE),                              # claimed: the assignee
    (task("alice"), STAFF), (task(), STAFF),            # staff always
    (task("mila", group="office"), MILA),                # assigned to them outside their groups
])
def test_who_sees_a_task(entry: Any, actor: Actor) -> None:
    queue.may_see(entry, actor)


@pytest.mark.parametrize(("entry", "actor"), [
    (task(), MILA),                 # another group's work
    (task("alice"), BOB),           # claimed by someone else in the group
    (task(group=None), ALICE),      # no group at all
])
def test_who_does_not(entry: Any, actor: Actor) -> None:
    with pytest.raises(Forbidden, match="^task t1 is not yours to see$"):
        queue.may_see(entry, actor)


# -- completing ---------------------------------------------------------------------------------
def test_the_assignee_and_the_unclaimed_group_may_complete() -> None:
    queue.may_complete(task("alice"), ALICE)
    queue.may_complete(task(), BOB)
    queue.may_complete(task("mila"), MILA)  # a personal task outside their groups


def test_an_outsider_is_not_told_who_works_on_a_task() -> None:
    with pytest.raises(Forbidden) as refused:
        queue.may_complete(task("alice"), MILA)
    assert refused.value.message == "task t1 belongs to group 'office', which you are not in"
    assert "alice" not in refused.value.message


def test_a_task_claimed_by_a_colleague_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="^task t1 is claimed by alice$"):
        queue.may_complete(task("alice"), BOB)
    with pytest.raises(Conflict, match="^task t1 is claimed by alice$"):
        queue.may_complete(task("alice"), STAFF)


def test_staff_outside_the_group_must_claim_or_assign_first() -> None:
    with pytest.raises(Forbidden, match="^task t1 belongs to group 'office', which you are not in$"):
        queue.may_complete(task(), STAFF)


# -- claiming and releasing ---------------------------------------------------------------------
def test_claiming_makes_it_mine_from_now() -> None:
    entry = task()
    queue.claim(None, entry, BOB, NOW)  # type: ignore[arg-type]
    assert (entry.assignee, entry.claimed_at) == ("bob", NOW)


@pytest.mark.parametrize(("entry", "actor", "error", "message"), [
    (task(), MILA, Forbidden, "task t1 belongs to group 'office', which you are not in"),
    (task(), STAFF, Forbidden, "task t1 belongs to group 'office', which you are not in"),
    (task("alice"), ALICE, Conflict, "you already claimed task t1"),
    (task("mila", group="office"), MILA, Conflict, "you already claimed task t1"),
    (task("alice"), BOB, Conflict, "task t1 is already claimed by alice"),
])
def test_claim_refusals(entry: Any, actor: Actor, error: type[Exception], message: str) -> None:
    before = (entry.assignee, entry.claimed_at)
    with pytest.raises(error) as refused:
        queue.claim(None, entry, actor, NOW)  # type: ignore[arg-type]
    assert str(refused.value) == message
    assert (entry.assignee, entry.claimed_at) == before


@pytest.mark.parametrize("actor", [ALICE, STAFF])
def test_the_assignee_or_staff_release_a_task(actor: Actor) -> None:
    entry = task("alice", claimed_at=NOW)
    queue.unclaim(None, entry, actor, NOW)  # type: ignore[arg-type]
    assert (entry.assignee, entry.claimed_at) == (None, None)


def test_release_refusals() -> None:
    entry = task("alice", claimed_at=NOW)
    with pytest.raises(Forbidden, match="^task t1 is claimed by alice; only they or staff may release it$"):
        queue.unclaim(None, entry, BOB, NOW)  # type: ignore[arg-type]
    assert (entry.assignee, entry.claimed_at) == ("alice", NOW)
    with pytest.raises(Conflict, match="^task t1 is not claimed$"):
        queue.unclaim(None, task(), STAFF, NOW)  # type: ignore[arg-type]


# -- what a task shows --------------------------------------------------------------------------
def test_overdue_means_past_its_due_time() -> None:
    assert queue.view(task(due_at=NOW - timedelta(seconds=1)), {}, NOW).overdue is True
    assert queue.view(task(due_at=NOW), {}, NOW).overdue is False
    assert queue.view(task(due_at=NOW + timedelta(days=1)), {}, NOW).overdue is False
    assert queue.view(task(), {}, NOW).overdue is False


def test_a_task_view_carries_its_form_and_escalation() -> None:
    schema = {"type": "object"}
    shown = queue.view(task("alice", form="verdict", priority=3, context={"name": "Cas"},
                            escalation_level=2, escalated_to="coordinator"),
                       {"verdict": schema}, NOW)
    assert (shown.form, shown.form_schema, shown.priority, shown.context) == ("verdict", schema, 3,
                                                                              {"name": "Cas"})
    assert (shown.escalation_level, shown.escalated_to, shown.assignee) == (2, "coordinator", "alice")
    assert (shown.id, shown.instance_id, shown.process_id, shown.business_key, shown.element_id,
            shown.title, shown.candidate_group) == ("t1", "i1", "queue", "Q1", "soon", "Soon", "office")
    plain = queue.view(task(), {"verdict": schema}, NOW)
    assert (plain.form_schema, plain.context, plain.escalation_level) == (None, {}, 0)
    due, planned, at = NOW + timedelta(days=2), NOW + timedelta(days=1), NOW - timedelta(hours=1)
    timed = queue.view(task(due_at=due, next_escalation_at=planned, escalated_at=at), {}, NOW)
    assert (timed.due_at, timed.created_at, timed.next_escalation_at, timed.escalated_at) == (due, NOW, planned, at)


# -- starting a process -------------------------------------------------------------------------
def start_elements(**start: Any) -> dict[str, Any]:
    return {"assess": {"type": "UserTask", "starters": "office"},
            "start": {"type": "StartEvent", **start}}


def test_staff_start_anything() -> None:
    rules.may_start(start_elements(), STAFF, "certification")


def test_others_start_what_the_start_event_opens_to_one_of_their_groups() -> None:
    rules.may_start(start_elements(starters="candidate, mentor"), MILA, "recertification_written")
    with pytest.raises(Forbidden) as refused:
        rules.may_start(start_elements(starters=" candidate ,, office "), MILA, "recertification_written")
    assert str(refused.value) == "you may not start recertification_written (it is open to: candidate, office)"


def test_a_process_without_starters_is_for_staff_only() -> None:
    for elements in (start_elements(), start_elements(starters=" , "), {}):
        with pytest.raises(Forbidden) as refused:
            rules.may_start(elements, ALICE, "orders")
        assert str(refused.value) == "you may not start orders (staff only)"


def test_who_a_process_is_about() -> None:
    assert rules.subject_variable(start_elements()) == "candidate"
    assert rules.subject_variable(start_elements(subject="holder")) == "holder"
    elements = start_elements(subject="member")
    assert rules.subject(elements, {"member": "cas"}, None) == "cas"
    assert rules.subject(elements, {}, ("renewal", {"member": "bea"})) == "bea"
    assert rules.subject(elements, {}, ("renewal", {"holder": "kees"})) == "kees"
    assert rules.subject(elements, {"member": "cas"}, ("renewal", {"member": "bea"})) == "cas"
    assert rules.subject(elements, {"member": 42}, None) == "42"
    assert rules.subject(elements, {"candidate": "cas"}, None) is None
    assert rules.subject(elements, {}, None) is None


def test_only_staff_may() -> None:
    rules.staff_only(STAFF, "cancel instances")
    with pytest.raises(Forbidden, match="^only staff may cancel instances$"):
        rules.staff_only(ALICE, "cancel instances")


# -- input --------------------------------------------------------------------------------------
def test_input_too_big_or_not_data_is_refused_naming_the_field() -> None:
    rules.bounded({"a": "x" * 50}, "data", 100)
    with pytest.raises(InvalidInput) as refused:
        rules.bounded({"a": "x" * 200}, "data", 100)
    assert refused.value.details == {"field": "data"}
    assert "data is larger than the limit of 100 characters" in str(refused.value)
    with pytest.raises(InvalidInput) as not_data:
        rules.bounded({"when": object()}, "payload")
    assert not_data.value.details == {"field": "payload"}
    rules.bounded({"a": "x" * 200}, "data")  # the default limit is far above 100


def test_a_form_names_every_field_it_rejects() -> None:
    schema = {"type": "object", "required": ["eligible"], "additionalProperties": False,
              "properties": {"eligible": {"type": "boolean"}, "remarks": {"type": "string"}}}
    rules.validate_form(schema, {"eligible": True}, "eligibility")
    with pytest.raises(InvalidInput) as refused:
        rules.validate_form(schema, {"eligible": "ja", "remarks": 3}, "eligibility")
    assert refused.value.details["fields"] == {"eligible": "'ja' is not of type 'boolean'",
                                               "remarks": "3 is not of type 'string'"}
    assert str(refused.value) == ("form eligibility rejected: eligible: 'ja' is not of type 'boolean'; "
                                  "remarks: 3 is not of type 'string'")
    with pytest.raises(InvalidInput) as whole:
        rules.validate_form(schema, {}, "eligibility")
    assert whole.value.details["fields"] == {"(form)": "'eligible' is a required property"}


@pytest.mark.parametrize("version", [0, -1, 2**31])
def test_a_version_that_cannot_exist_is_not_found_without_asking_the_database(version: int) -> None:
    with pytest.raises(NotFound, match=f"^no deployed process 'queue' version {version}$"):
        rules.definition(None, "queue", version)  # type: ignore[arg-type]


def test_a_start_form_closes_the_start_data() -> None:
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"candidate": {"type": "string"}}}
    with_form = SimpleNamespace(elements=start_elements(form="apply.json"), forms={"apply.json": schema})
    rules.check_start_form(with_form, {"candidate": "cas"})
    with pytest.raises(InvalidInput) as refused:
        rules.check_start_form(with_form, {"candidate": "cas", "paid": True})
    assert str(refused.value).startswith("form apply.json rejected: (form): Additional properties")
    without = SimpleNamespace(elements=start_elements(), forms={"apply.json": schema})
    rules.check_start_form(without, {"candidate": "cas", "paid": True})  # no form: the process decides


def test_a_nested_field_is_named_by_its_path() -> None:
    schema = {"type": "object", "properties": {"address": {
        "type": "object", "properties": {"street": {"type": "string"}}}}}
    with pytest.raises(InvalidInput) as refused:
        rules.validate_form(schema, {"address": {"street": 12}}, "address")
    assert refused.value.details["fields"] == {"address/street": "12 is not of type 'string'"}


def test_which_variable_a_waiting_task_is_found_by() -> None:
    """A message for a waiting task is matched on the variable its ``correlation`` names."""
    waiting = SimpleNamespace(extensions={"properties": {"correlation": "invoice_number", "form": "x"}})
    assert queue.correlation_variable(waiting) == "invoice_number"
    assert queue.correlation_variable(SimpleNamespace(extensions={"properties": {"form": "x"}})) is None


# -- start guards -------------------------------------------------------------------------------
def test_a_start_guard_decides_on_the_register_and_the_moment_it_is_given() -> None:
    """A guard (e.g. "recertification opens six months before expiry") is asked with the
    caller's database session and the engine's clock, and its refusal names the guard."""
    register = SimpleNamespace(holders={"cas"})

    def once_per_person(session: Any, now: datetime, data: dict[str, Any]) -> str | None:
        if now >= NOW + timedelta(days=30):
            return "applications for this round closed"
        return "you already hold this certificate" if data["candidate"] in session.holders else None

    registry = SimpleNamespace(guards={"test/once": once_per_person})
    elements = start_elements(guard="test/once")
    rules.check_guards(register, registry, elements, NOW, {"candidate": "bea"})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as held:
        rules.check_guards(register, registry, elements, NOW, {"candidate": "cas"})  # type: ignore[arg-type]
    assert (held.value.message, held.value.details) == ("you already hold this certificate",
                                                        {"guard": "test/once"})
    with pytest.raises(InvalidInput, match="^applications for this round closed$"):
        rules.check_guards(register, registry, elements, NOW + timedelta(days=31),  # type: ignore[arg-type]
                           {"candidate": "bea"})


def test_only_the_start_events_guard_decides_whether_a_process_starts() -> None:
    """A ``guard`` property on another element (a process owner's slip) is not asked at start."""
    closed = SimpleNamespace(guards={"test/closed": lambda *_: "closed"})
    elements = {"assess": {"type": "UserTask", "guard": "test/closed"}, "start": {"type": "StartEvent"}}
    rules.check_guards(None, closed, elements, NOW, {})  # type: ignore[arg-type]
