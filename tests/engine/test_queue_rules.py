"""The task queue as its users notice it: who sees which work, in which order, what comes next
after a completion, and who may look at an instance (tests/engine/data_queue: five tasks at once
in two groups, with and without due dates and priorities)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from certflow.bootstrap import build_engine
from certflow.engine.errors import Forbidden, InvalidInput, NotFound
from certflow.i18n import translate
from tests.support import ROOT, Harness

QUEUE_DIR = ROOT / "tests" / "engine" / "data_queue"


@pytest.fixture
def queue(harness: Harness) -> Harness:
    harness.engine.deploy(harness.staff, QUEUE_DIR)
    return harness


def start(h: Harness, key: str = "Q1") -> str:
    return h.engine.start(h.staff, "queue", key, {}).id


def ids(tasks: list) -> list[str]:  # type: ignore[type-arg]
    return [t.element_id for t in tasks]


def test_inbox_order_is_due_date_first_then_undated_by_priority(queue: Harness) -> None:
    start(queue)
    clerk = queue.user("clerk", ["office"])
    assert ids(queue.engine.inbox(clerk)) == ["soon", "later", "undated_high", "undated_low"]


def test_overdue_filter_shows_only_what_is_past_due(queue: Harness) -> None:
    start(queue)
    clerk = queue.user("clerk", ["office"])
    assert ids(queue.engine.inbox(clerk, overdue=True)) == []
    queue.advance("P3D")  # "soon" (P2D) is now late, "later" (P5D) is not
    late = queue.engine.inbox(clerk, overdue=True)
    assert ids(late) == ["soon"] and all(t.overdue for t in late)
    on_time = queue.engine.inbox(clerk, overdue=False)
    assert ids(on_time) == ["later", "undated_high", "undated_low"]
    assert not any(t.overdue for t in on_time)


def test_a_group_you_are_not_in_shows_none_of_its_work(queue: Harness) -> None:
    start(queue)
    mentor = queue.user("mila", ["mentor"])
    try:
        seen = ids(queue.engine.inbox(mentor, group="office"))
    except Forbidden:
        seen = []
    assert not {"soon", "later", "undated_high", "undated_low"} & set(seen)
    assert ids(queue.engine.inbox(mentor, group="mentor")) == ["mentoring"]
    # staff may look into any group's queue
    assert ids(queue.engine.inbox(queue.staff, group="mentor")) == ["mentoring"]


def test_someone_elses_claimed_task_leaves_my_inbox(queue: Harness) -> None:
    start(queue)
    alice = queue.user("alice", ["office"])
    bob = queue.user("bob", ["office"])
    [soon] = [t for t in queue.engine.inbox(alice) if t.element_id == "soon"]
    queue.engine.claim(alice, soon.id)
    assert "soon" in ids(queue.engine.inbox(alice))
    assert "soon" not in ids(queue.engine.inbox(bob))


def test_completion_answers_with_what_is_mine_to_do_next_in_that_case(queue: Harness) -> None:
    instance_id = start(queue)
    clerk = queue.user("clerk", ["office"])
    [soon] = [t for t in queue.engine.inbox(clerk) if t.element_id == "soon"]
    done = queue.engine.complete(clerk, soon.id, {"ok": True})
    assert done.instance_id == instance_id and done.instance_status == "running"
    assert sorted(ids(done.next_tasks)) == ["followup", "later", "undated_high", "undated_low"]
    mentor = queue.user("mila", ["mentor"])
    [mentoring] = queue.engine.inbox(mentor)
    assert ids(queue.engine.complete(mentor, mentoring.id, {"ok": True}).next_tasks) == []


def test_an_instance_is_visible_to_whoever_holds_one_of_its_tasks(queue: Harness) -> None:
    instance_id = start(queue)
    holder = queue.user("mila", ["mentor"])
    stranger = queue.user("max", ["mentor"])
    with pytest.raises(Forbidden):
        queue.engine.instance(holder, instance_id)  # unclaimed group work is not enough
    [mentoring] = queue.engine.inbox(holder)
    queue.engine.claim(holder, mentoring.id)
    view = queue.engine.instance(holder, instance_id)
    assert view.id == instance_id
    assert view.data == {}  # the instance's data stays with staff
    assert [t.element_id for t in view.open_tasks] == ["mentoring"]  # only their own task
    with pytest.raises(Forbidden):
        queue.engine.instance(stranger, instance_id)


def test_the_queue_diagram_is_what_these_tests_assume(queue: Harness) -> None:
    """Guard against the test data drifting: five open tasks, four for the office."""
    start(queue)
    assert len(queue.engine.inbox(queue.staff, group="office")) == 4
    assert Path(QUEUE_DIR / "queue" / "queue.bpmn").exists()


def test_who_may_open_a_task(queue: Harness) -> None:
    """The assignee and staff open it; an unclaimed task is open to its group only; once
    claimed, the rest of the group no longer can. Each refusal says why."""
    start(queue)
    alice = queue.user("alice", ["office"])
    bob = queue.user("bob", ["office"])
    mentor = queue.user("mila", ["mentor"])
    [soon] = [t for t in queue.engine.inbox(alice) if t.element_id == "soon"]
    assert queue.engine.task(bob, soon.id).id == soon.id  # unclaimed: the group sees it
    with pytest.raises(Forbidden, match="not yours to see"):
        queue.engine.task(mentor, soon.id)
    queue.engine.claim(alice, soon.id)
    assert queue.engine.task(alice, soon.id).assignee == "alice"
    assert queue.engine.task(queue.staff, soon.id).assignee == "alice"
    with pytest.raises(Forbidden, match="not yours to see"):
        queue.engine.task(bob, soon.id)


def test_refusals_say_what_is_wrong(queue: Harness) -> None:
    from certflow.engine.errors import Conflict, InvalidInput, NotFound

    start(queue)
    alice = queue.user("alice", ["office"])
    bob = queue.user("bob", ["office"])
    queue.user("mila", ["mentor"])
    [soon] = [t for t in queue.engine.inbox(alice) if t.element_id == "soon"]
    with pytest.raises(Conflict, match=f"task {soon.id} is not claimed"):
        queue.engine.unclaim(alice, soon.id)
    with pytest.raises(Forbidden, match="^only staff may assign tasks$"):
        queue.engine.assign(alice, soon.id, "bob")
    with pytest.raises(NotFound, match="^no user 'nobody'$") as unknown:
        queue.engine.assign(queue.staff, soon.id, "nobody")
    assert unknown.value.details == {"field": "assignee"}  # shown at the assignee box
    with pytest.raises(InvalidInput, match="^mila is not in group 'office'$") as wrong_group:
        queue.engine.assign(queue.staff, soon.id, "mila")
    assert wrong_group.value.details.get("field") == "assignee"
    queue.engine.claim(alice, soon.id)
    with pytest.raises(Forbidden, match="claimed by alice; only they or staff may release it"):
        queue.engine.unclaim(bob, soon.id)


def test_staff_assign_a_task_to_someone_in_its_group(queue: Harness) -> None:
    start(queue)
    bob = queue.user("bob", ["office"])
    alice = queue.user("alice", ["office"])
    [soon] = [t for t in queue.engine.inbox(bob) if t.element_id == "soon"]
    assert queue.engine.assign(queue.staff, soon.id, "bob").assignee == "bob"
    assert queue.engine.task(bob, soon.id).assignee == "bob"
    assert "soon" in ids(queue.engine.inbox(bob))
    assert "soon" not in ids(queue.engine.inbox(alice))


def test_a_task_that_is_gone_says_so(queue: Harness) -> None:
    from certflow.engine.errors import NotFound

    with pytest.raises(NotFound) as gone:
        queue.engine.task(queue.staff, "no-such-task")
    assert str(gone.value) == "no open task 'no-such-task' (it may have been completed or cancelled)"


def test_what_comes_next_is_mine_or_my_groups_unclaimed_work_in_that_case_only(queue: Harness) -> None:
    instance_id = start(queue, "Q1")
    start(queue, "Q2")
    clerk = queue.user("clerk", ["office"])
    bob = queue.user("bob", ["office"])
    mine = {t.element_id: t for t in queue.engine.inbox(clerk) if t.instance_id == instance_id}
    queue.engine.claim(bob, mine["later"].id)            # a colleague's now
    queue.engine.claim(clerk, mine["undated_high"].id)   # mine
    done = queue.engine.complete(clerk, mine["soon"].id, {"ok": True})
    assert {t.instance_id for t in done.next_tasks} == {instance_id}
    assert sorted(ids(done.next_tasks)) == ["followup", "undated_high", "undated_low"]


def test_holding_a_task_in_another_case_does_not_open_this_one(queue: Harness) -> None:
    first = start(queue, "Q1")
    second = start(queue, "Q2")
    holder = queue.user("mila", ["mentor"])
    [mentoring] = [t for t in queue.engine.inbox(holder) if t.instance_id == second]
    queue.engine.claim(holder, mentoring.id)
    assert queue.engine.instance(holder, second).id == second
    with pytest.raises(Forbidden) as refused:
        queue.engine.instance(holder, first)
    assert str(refused.value) == f"you may not see instance {first}"


def test_staff_see_the_data_a_case_has_gathered_while_it_runs_and_when_it_ends(queue: Harness) -> None:
    instance_id = start(queue)
    clerk = queue.user("clerk", ["office"])
    mentor = queue.user("mila", ["mentor"])
    [soon] = [t for t in queue.engine.inbox(clerk) if t.element_id == "soon"]
    queue.engine.complete(clerk, soon.id, {"ok": True})
    assert queue.engine.instance(queue.staff, instance_id).data.get("ok") is True
    for who in (clerk, mentor, clerk, clerk, clerk, clerk):
        for task in queue.engine.inbox(who):
            if task.instance_id == instance_id:
                queue.engine.complete(who, task.id, {"ok": True})
    view = queue.engine.instance(queue.staff, instance_id)
    assert view.status == "completed" and view.data.get("ok") is True


def test_staff_still_see_what_a_cancelled_case_had_gathered(queue: Harness) -> None:
    instance_id = start(queue)
    clerk = queue.user("clerk", ["office"])
    [soon] = [t for t in queue.engine.inbox(clerk) if t.element_id == "soon"]
    queue.engine.complete(clerk, soon.id, {"ok": True})
    view = queue.engine.cancel(queue.staff, instance_id, "withdrawn by the candidate")
    assert view.status == "cancelled"
    assert view.data == {"business_key": "Q1", "started_by": queue.staff.username, "ok": True}
    assert queue.engine.instance(queue.staff, instance_id).data == view.data


def test_staff_see_the_data_the_open_work_carries_not_what_a_finished_branch_left(queue: Harness) -> None:
    """Five branches run at once: "soon" is done (ok) and its follow-up is open; the mentor's
    branch then ends with "not ok". The case's data is what its open work carries on with."""
    instance_id = start(queue)
    clerk = queue.user("clerk", ["office"])
    mentor = queue.user("mila", ["mentor"])
    [soon] = [t for t in queue.engine.inbox(clerk) if t.element_id == "soon"]
    queue.engine.complete(clerk, soon.id, {"ok": True})
    [mentoring] = queue.engine.inbox(mentor)
    queue.engine.complete(mentor, mentoring.id, {"ok": False})
    assert queue.engine.instance(queue.staff, instance_id).data == {
        "business_key": "Q1", "started_by": queue.staff.username, "ok": True}


def test_a_task_completed_a_moment_ago_is_gone_and_the_second_submission_is_told_so(queue: Harness) -> None:
    start(queue)
    clerk = queue.user("clerk", ["office"])
    [soon] = [t for t in queue.engine.inbox(clerk) if t.element_id == "soon"]
    queue.engine.complete(clerk, soon.id, {"ok": True})
    with pytest.raises(NotFound) as gone:  # a second tab, or a double click
        queue.engine.complete(clerk, soon.id, {"ok": False})
    assert str(gone.value) == f"no open task '{soon.id}' (it may have been completed or cancelled)"
    assert translate("nl", gone.value.message) == ("Deze taak staat niet meer open: ze is misschien "
                                                   "afgerond of geannuleerd.")


def new_form_version(h: Harness, tmp_path: Path) -> None:
    """Version 2 of the queue process: its form ``ok.json`` now also requires ``remarks``."""
    shutil.copytree(QUEUE_DIR, tmp_path / "v2")
    form = tmp_path / "v2" / "queue" / "forms" / "ok.json"
    schema = json.loads(form.read_text())
    schema["properties"]["remarks"] = {"type": "string", "minLength": 1}
    schema["required"] = ["ok", "remarks"]
    form.write_text(json.dumps(schema))
    assert [(d.process_id, d.version) for d in h.engine.deploy(h.staff, tmp_path / "v2")] == [("queue", 2)]


def test_each_case_is_checked_against_the_form_of_its_own_version(queue: Harness, tmp_path: Path) -> None:
    """A process owner deploys a new version of a form: cases started before keep the form
    they were started with, new cases get the new one, whichever is submitted first."""
    before = start(queue, "Q1")
    new_form_version(queue, tmp_path)
    after = start(queue, "Q2")
    clerk = queue.user("clerk", ["office"])
    tasks = {(t.instance_id, t.element_id): t for t in queue.engine.inbox(clerk)}
    old, new = tasks[before, "soon"], tasks[after, "soon"]
    assert old.form_schema is not None and new.form_schema is not None
    assert (old.form_schema["required"], new.form_schema["required"]) == (["ok"], ["ok", "remarks"])
    with pytest.raises(InvalidInput) as incomplete:
        queue.engine.complete(clerk, new.id, {"ok": True})
    assert incomplete.value.details["fields"] == {"(form)": "'remarks' is a required property"}
    with pytest.raises(InvalidInput) as unexpected:
        queue.engine.complete(clerk, old.id, {"ok": True, "remarks": "checked"})
    assert unexpected.value.details["fields"] == {
        "(form)": "Additional properties are not allowed ('remarks' was unexpected)"}
    queue.engine.complete(clerk, old.id, {"ok": True})
    queue.engine.complete(clerk, new.id, {"ok": True, "remarks": "checked"})
    later = tasks[after, "later"]  # the new version's form still holds after the old one's
    with pytest.raises(InvalidInput, match="'remarks' is a required property"):
        queue.engine.complete(clerk, later.id, {"ok": True})
    assert queue.engine.instance(queue.staff, after).data["remarks"] == "checked"


def test_a_freshly_started_web_process_shows_the_inbox_with_each_tasks_form(queue: Harness) -> None:
    """After a restart nothing is cached: the first inbox page loads the definitions itself."""
    start(queue)
    clerk = queue.user("clerk", ["office"])
    restarted = build_engine()
    page = restarted.inbox(clerk)
    assert ids(page) == ["soon", "later", "undated_high", "undated_low"]
    assert all(t.form_schema is not None and t.form_schema["title"] == "Done" for t in page)


def test_a_save_keeps_the_claims_of_tasks_still_open_and_removes_rows_the_state_does_not_have(
        queue: Harness) -> None:
    """The queue is rewritten from the state without reading it first: a task that stays open
    keeps its row and its claim, and a row nothing in the state accounts for (an edited table)
    is gone after the next save rather than shown forever."""
    from sqlalchemy import insert, select

    from certflow.store.db import session_scope
    from certflow.store.models import HumanTask

    instance_id = start(queue)
    alice = queue.user("alice", ["office"])
    [soon] = [t for t in queue.engine.inbox(alice) if t.element_id == "soon"]
    [later] = [t for t in queue.engine.inbox(alice) if t.element_id == "later"]
    queue.engine.claim(alice, later.id)
    with session_scope() as s:
        row = s.execute(select(HumanTask.__table__).where(HumanTask.id == later.id)).mappings().one()
        s.execute(insert(HumanTask.__table__).values({**row, "id": "stray", "assignee": None}))
    queue.engine.complete(alice, soon.id, {"ok": True})
    with session_scope() as s:
        rows = {r.element_id: (r.id, r.assignee) for r in s.scalars(
            select(HumanTask).where(HumanTask.instance_id == instance_id))}
    assert rows["later"] == (later.id, "alice")
    assert "stray" not in {task_id for task_id, _ in rows.values()}
    assert "soon" not in rows and "followup" in rows
