"""Every human task in the catalogue has a due date and an escalation policy of its own, and a
past-due verdict task escalates: reminder, then the coordinators, who reassign it."""

from __future__ import annotations

from typing import Any

import pytest

import handlers
from certflow.engine.deploy import discover, parse_folder
from tests.integration.topology import wait_for
from tests.processes.driver import PROCESSES, Driver
from tests.processes.test_recertification_written import certify, through_dossier


@pytest.mark.parametrize("folder", discover(PROCESSES), ids=lambda f: f.name)
def test_every_user_task_has_a_due_date_and_a_policy(folder) -> None:
    bundle = parse_folder(folder, handlers.load_all())
    assert bundle.problems == []
    for element, meta in bundle.elements.items():
        if meta.get("type") != "UserTask":
            continue
        assert meta.get("due"), f"{folder.name}/{element} has no due date"
        assert meta["escalation"]["policy"] == f"{folder.name}/{element}", \
            f"{folder.name}/{element} is not named in {folder.name}/escalation.json"


@pytest.fixture
def recert(driver: Driver) -> Driver:
    driver.person("ria", ["assessor"])
    driver.person("ab", ["assessor"])
    driver.person("ina", ["assessor"])
    return driver


def test_a_verdict_past_due_reminds_the_assessor_then_escalates_to_the_coordinator(recert: Driver) -> None:
    d = recert
    certify(d, days_left=120)
    through_dossier(d)
    first = next(t for t in d.inbox("ria") if t.element_id == "assess_1")
    assert first.due_at is not None and first.next_escalation_at is not None
    d.later("P22D")  # the 21 days for a verdict passed
    if d.topology is None:
        d.engine.sweep_escalations()  # in-process tier: what beat's tick runs
    cor = d.people["cor"]
    # with a real worker and beat, beat's sweep alone escalates them
    def both() -> dict[str, Any] | None:
        found = {v.task.element_id: v for v in d.engine.escalations(cor) if v.level == 2}
        return found if len(found) == 2 else None

    escalated = wait_for(both, timeout=60, what="beat's escalation sweep", topology=d.topology)
    assert set(escalated) == {"assess_1", "assess_2"}
    assert wait_for(lambda: "escalation/reminder" in d.emails("ria"), what="the reminder mail")
    assert "escalation/escalated" in d.emails("cor")
    history = escalated["assess_1"].history
    assert [(h["action"], h["detail"]["step"]) for h in history] == [
        ("escalation_reminder", "reminder"), ("task_escalated", "escalation")]
    assert history[0]["detail"]["to"] == "ria"
    assert history[1]["detail"]["policy"] == "recertification_written/assess_1"
    assert escalated["assess_1"].task.assignee == "ria"  # the policy keeps it with her until reassigned
    d.engine.escalation_reassign(cor, first.id, "ina", "ria is ill")
    assert [t.element_id for t in d.inbox("ina")] == ["assess_1"]
    assert {v.task.element_id for v in d.engine.escalations(cor)} == {"assess_2"}
