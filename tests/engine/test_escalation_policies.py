"""The escalation policy as a process owner writes it and as a task then lives it: when the
reminder, the escalation and the second level fall, to which group, which step a new task starts
at, when a task is due, and what deploy says about a bad ``escalation.json`` (file, element and
a message that says what to write instead). Pure: no database, no engine."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from certflow.engine import policies
from certflow.engine.policies import DEFAULT, Step
from certflow.workdays import Calendar

CAL = Calendar()
UTC = timezone.utc
# Wednesday 11 March 2026, 17:00 in the Netherlands (CET, UTC+1).
DUE = datetime(2026, 3, 11, 16, 0, tzinfo=UTC)
FULL = {"remind_before": "2 werkdagen", "escalate_to": "coordinator", "on_escalation": "keep",
        "second_level_after": "5 werkdagen", "second_level_to": "office_manager"}
MON_9_MARCH_17H = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
WED_18_MARCH_17H = datetime(2026, 3, 18, 16, 0, tzinfo=UTC)


# -- which policy a task follows ----------------------------------------------------------------
def test_a_task_follows_its_versions_policy_or_the_default() -> None:
    own = {"escalate_to": "assessors_coordinator", "policy": "p/assess"}
    assert policies.of({"assess": {"type": "UserTask", "escalation": own}}, "assess") == own
    assert policies.of({"assess": {"type": "UserTask"}}, "assess") == DEFAULT
    assert policies.of({"other": {"escalation": own}}, "assess") == DEFAULT
    assert policies.of(None, "assess") == DEFAULT
    assert DEFAULT["escalate_to"] == "coordinator" and DEFAULT["second_level_to"] == "office_manager"


# -- the steps and their times --------------------------------------------------------------------
def test_reminder_escalation_and_second_level_fall_on_working_days_at_the_due_clock_time() -> None:
    assert policies.steps(FULL, DUE, CAL) == [
        Step("reminder", MON_9_MARCH_17H),
        Step("escalation", DUE, "coordinator"),
        Step("second_level", WED_18_MARCH_17H, "office_manager"),
    ]


def test_calendar_terms_count_elapsed_days() -> None:
    policy = {**FULL, "remind_before": "P3D", "second_level_after": "P1D"}
    assert [s.at for s in policies.steps(policy, DUE, CAL)] == [
        DUE - timedelta(days=3), DUE, DUE + timedelta(days=1)]


@pytest.mark.parametrize(("missing", "kinds"), [
    ("remind_before", ["escalation", "second_level"]),
    ("escalate_to", ["reminder", "second_level"]),
    ("second_level_to", ["reminder", "escalation"]),
    ("second_level_after", ["reminder", "escalation"]),
])
def test_a_step_the_policy_leaves_out_does_not_happen(missing: str, kinds: list[str]) -> None:
    assert [s.kind for s in policies.steps({**FULL, missing: None}, DUE, CAL)] == kinds


def test_next_step_time_per_level_and_nothing_after_the_last() -> None:
    assert policies.next_at(FULL, DUE, 0, CAL) == MON_9_MARCH_17H
    assert policies.next_at(FULL, DUE, 1, CAL) == DUE
    assert policies.next_at(FULL, DUE, 2, CAL) == WED_18_MARCH_17H
    assert policies.next_at(FULL, DUE, 3, CAL) is None
    assert policies.next_at(FULL, None, 0, CAL) is None


def test_a_new_task_skips_a_reminder_that_would_already_be_late() -> None:
    assert policies.first_level(FULL, DUE, MON_9_MARCH_17H - timedelta(seconds=1), CAL) == 0
    assert policies.first_level(FULL, DUE, MON_9_MARCH_17H, CAL) == 1
    assert policies.first_level(FULL, DUE, DUE - timedelta(hours=1), CAL) == 1
    # Without a reminder the first step is the escalation itself, never skipped.
    no_reminder = {**FULL, "remind_before": None}
    assert policies.first_level(no_reminder, DUE, DUE + timedelta(days=1), CAL) == 0
    assert policies.first_level({}, DUE, DUE + timedelta(days=1), CAL) == 0
    assert policies.first_level(FULL, None, DUE, CAL) == 0


@pytest.mark.parametrize("policy", [FULL, {**FULL, "remind_before": None}, {**FULL, "second_level_to": None}, {}])
def test_a_new_due_time_s_first_step_is_its_first_level_and_that_level_s_next_time(policy: dict[str, Any]) -> None:
    """What a new queue entry stores (level and next escalation), from one plan of the steps."""
    for now in (MON_9_MARCH_17H - timedelta(seconds=1), MON_9_MARCH_17H, DUE, DUE + timedelta(days=9)):
        level = policies.first_level(policy, DUE, now, CAL)
        assert policies.first_step(policy, DUE, now, CAL) == (level, policies.next_at(policy, DUE, level, CAL))
    assert policies.first_step(policy, None, DUE, CAL) == (0, None)


def test_due_time_from_the_tasks_term() -> None:
    # Friday 1 May 2026, 10:00: P2D ends on Sunday 3 May.
    start = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    assert policies.due_at({}, "P2D", start, CAL) == start + timedelta(days=2)
    assert policies.due_at({"move_to_working_day": False}, "P2D", start, CAL) == start + timedelta(days=2)
    # Moved: to the end of Monday 4 May (midnight starting 5 May, Dutch summer time).
    assert policies.due_at({"move_to_working_day": True}, "P2D", start, CAL) == \
        datetime(2026, 5, 4, 22, 0, tzinfo=UTC)
    # 2 working days from Friday 1 May: Monday 4 May, then Wednesday 6 May (5 May is a holiday).
    assert policies.due_at({}, "2 werkdagen", start, CAL) == datetime(2026, 5, 6, 22, 0, tzinfo=UTC)


# -- deploy: escalation.json ----------------------------------------------------------------------
def _elements() -> dict[str, Any]:
    return {"assess": {"type": "UserTask"}, "answer": {"type": "UserTask"},
            "mail": {"type": "ServiceTask"}}


def _attach(data: Any, elements: dict[str, Any] | None = None) -> tuple[list[tuple[str, str | None, str]],
                                                                         dict[str, Any]]:
    elements = _elements() if elements is None else elements
    text = data if isinstance(data, str) else json.dumps(data)
    problems = policies.attach("casework", {"escalation.json": text}, elements)
    return [(p.file, p.element, p.message) for p in problems], elements


def test_without_a_policy_file_deploy_changes_nothing() -> None:
    elements = _elements()
    assert policies.attach("casework", {"casework.bpmn": "<x/>"}, elements) == []
    assert elements == _elements()


def test_each_user_task_gets_the_defaults_or_its_own_policy_named_after_where_it_comes_from() -> None:
    problems, elements = _attach({"$comment": "owner: office",
                                  "defaults": {"remind_before": "3 werkdagen"},
                                  "tasks": {"assess": {"escalate_to": "assessors", "on_escalation": "return_to_group"}}})
    assert problems == []
    assert elements["assess"]["escalation"] == {
        **DEFAULT, "remind_before": "3 werkdagen", "escalate_to": "assessors",
        "on_escalation": "return_to_group", "policy": "casework/assess"}
    assert elements["answer"]["escalation"] == {**DEFAULT, "remind_before": "3 werkdagen",
                                                "policy": "casework/defaults"}
    assert "escalation" not in elements["mail"]


def test_a_task_listed_without_overrides_keeps_the_defaults() -> None:
    problems, elements = _attach({"tasks": {"assess": {}}})
    assert problems == []
    assert elements["assess"]["escalation"] == {**DEFAULT, "policy": "casework/assess"}


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON: "),
    ("[]", "expected an object with 'defaults' and/or 'tasks'"),
    (json.dumps({"defaults": {}, "steps": {}}), "expected an object with 'defaults' and/or 'tasks'"),
    (json.dumps({"tasks": ["assess"]}), "'tasks' must map user-task ids to policies"),
])
def test_a_malformed_file_is_refused_naming_the_file(text: str, message: str) -> None:
    problems, elements = _attach(text)
    assert len(problems) == 1
    file, element, said = problems[0]
    assert (file, element) == ("casework/escalation.json", None)
    assert said.startswith(message)
    assert all("escalation" not in meta for meta in elements.values())


def test_a_policy_for_a_task_that_is_not_there_names_the_tasks_that_are() -> None:
    problems, _ = _attach({"tasks": {"asess": {}}})
    assert problems == [("casework/escalation.json", "asess",
                         "no user task 'asess' in casework (user tasks: answer, assess)")]
    problems, _ = _attach({"tasks": {"asess": {}}}, {"mail": {"type": "ServiceTask"}})
    assert problems == [("casework/escalation.json", "asess",
                         "no user task 'asess' in casework (user tasks: none)")]


def _problems(policy: Any, where: str = "tasks") -> list[str]:
    data = {"defaults": policy} if where == "defaults" else {"tasks": {"assess": policy}}
    problems, _ = _attach(data)
    expected_element = None if where == "defaults" else "assess"
    assert {(f, e) for f, e, _m in problems} <= {("casework/escalation.json", expected_element)}
    return [m for _f, _e, m in problems]


def test_a_policy_that_is_not_an_object() -> None:
    assert _problems("keep") == ["policy of assess: expected an object"]
    assert _problems(["keep"], "defaults") == ["defaults: expected an object"]


def test_unknown_keys_are_named_with_the_known_ones() -> None:
    assert _problems({"colour": "red", "escalate_too": "x"}) == [
        "policy of assess: unknown key 'colour' (known: escalate_to, move_to_working_day, on_escalation, "
        "remind_before, second_level_after, second_level_to)",
        "policy of assess: unknown key 'escalate_too' (known: escalate_to, move_to_working_day, "
        "on_escalation, remind_before, second_level_after, second_level_to)"]


@pytest.mark.parametrize("key", ["remind_before", "second_level_after"])
def test_a_term_that_is_no_term_is_refused(key: str) -> None:
    problems = _problems({key: "2 dagen"}, "defaults")
    assert len(problems) == 1
    assert problems[0].startswith(f"defaults: {key}: '2 dagen' is neither an ISO 8601 duration")
    [in_task] = _problems({key: "2 dagen"})  # named with its task
    assert in_task.startswith(f"policy of assess: {key}: '2 dagen' is neither")
    assert _problems({key: None}) == []
    assert _problems({key: "PT4H"}) == []


@pytest.mark.parametrize("key", ["escalate_to", "second_level_to"])
@pytest.mark.parametrize("value", ["", "   ", 7])
def test_escalation_must_name_a_group(key: str, value: Any) -> None:
    assert _problems({key: value}) == [f"policy of assess: {key} must name a group"]


@pytest.mark.parametrize("action", ["keep", "return_to_group", "reassign:ada", "reassign:x"])
def test_allowed_actions_on_escalation(action: str) -> None:
    assert _problems({"on_escalation": action}) == []


@pytest.mark.parametrize("action", ["shout", "reassign:", "reassign", "Keep", 3, None])
def test_other_actions_on_escalation_are_refused(action: Any) -> None:
    assert _problems({"on_escalation": action}) == [
        "policy of assess: on_escalation must be keep, return_to_group or reassign:<username>, "
        f"not {action!r}"]


def test_move_to_working_day_is_a_yes_or_no() -> None:
    assert _problems({"move_to_working_day": True}) == []
    assert _problems({"move_to_working_day": "yes"}) == [
        "policy of assess: move_to_working_day must be true or false"]


def test_a_policy_with_problems_still_reports_every_one_of_them() -> None:
    problems, _ = _attach({"defaults": {"remind_before": "2 dagen"},
                           "tasks": {"assess": {"on_escalation": "shout"}, "nope": {},
                                     "answer": {"colour": "red"}}})
    assert sorted((e or "", m.split(":")[0]) for _f, e, m in problems) == [
        ("", "defaults"), ("answer", "policy of answer"), ("assess", "policy of assess"),
        ("nope", "no user task 'nope' in casework (user tasks")]
