"""The inbox as a clerk uses it: filters narrow the queue, saved filters come back (and are
shared with a group), tasks are delegated and assigned in bulk."""

from __future__ import annotations

import pytest

from certflow.engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from certflow.engine.inbox_filters import InboxFilter
from certflow.services import saved_filters
from tests.processes.driver import Driver
from tests.services.conftest import apply, to_dossier, tx


def _ids(tasks) -> list[str]:
    return [t.business_key for t in tasks]


def test_filters_narrow_the_inbox(world: Driver) -> None:
    apply(world, "cas")
    apply(world, "bea")
    olga, engine = world.people["olga"], world.engine
    assert sorted(_ids(engine.inbox(olga))) == ["APP-bea", "APP-cas"]
    assert _ids(engine.inbox(olga, filters=InboxFilter(candidate="bea"))) == ["APP-bea"]
    assert _ids(engine.inbox(olga, filters=InboxFilter(candidate="APP-cas"))) == ["APP-cas"]
    assert engine.inbox(olga, filters=InboxFilter(element_id="assign_mentor")) == []
    assert len(engine.inbox(olga, filters=InboxFilter(element_id="check_eligibility",
                                                      process_id="certification"))) == 2
    assert engine.inbox(olga, filters=InboxFilter(process_id="orders")) == []
    # Eligibility is due in 5 days: inside a 7-day window, outside a 2-day one.
    assert len(engine.inbox(olga, filters=InboxFilter(due_within_days=7))) == 2
    assert engine.inbox(olga, filters=InboxFilter(due_within_days=2)) == []
    task = engine.inbox(olga, filters=InboxFilter(candidate="cas"))[0]
    engine.claim(olga, task.id)
    assert _ids(engine.inbox(olga, filters=InboxFilter(scope="mine"))) == ["APP-cas"]
    assert _ids(engine.inbox(olga, filters=InboxFilter(scope="unassigned"))) == ["APP-bea"]
    # Overdue: flagged on the task and selectable.
    world.later("P6D")
    overdue = engine.inbox(olga, filters=InboxFilter(overdue=True))
    assert len(overdue) == 2 and all(t.overdue for t in overdue)


def test_filters_read_from_a_query_string_refuse_nonsense() -> None:
    flt = InboxFilter.from_dict({"process_id": "certification", "due_within_days": "7", "scope": "",
                                 "overdue": "on", "nonsense": "x"})
    assert flt.to_dict() == {"process_id": "certification", "due_within_days": 7, "overdue": True}
    with pytest.raises(InvalidInput):
        InboxFilter.from_dict({"due_within_days": "soon"})
    with pytest.raises(InvalidInput):
        InboxFilter(scope="everything")


def test_inbox_choices_offer_the_user_tasks_of_my_groups(world: Driver) -> None:
    office = world.engine.inbox_choices(world.people["olga"])
    assert {"certification", "orders"} <= set(office["processes"])
    assert any(t["element_id"] == "check_eligibility" for t in office["tasks"])
    mentor = world.engine.inbox_choices(world.people["mila"])
    assert {t["element_id"] for t in mentor["tasks"]} == {"review_dossier"}
    assert mentor["groups"] == ["mentor"]


def test_saved_filters_are_mine_and_shared_with_my_group(world: Driver) -> None:
    olga, otto, mila = world.people["olga"], world.people["otto"], world.people["mila"]
    mine = tx(saved_filters.save, olga, "Mijn achterstand", InboxFilter(overdue=True, scope="mine").to_dict())
    shared = tx(saved_filters.save, olga, "Toelating", InboxFilter(element_id="check_eligibility").to_dict(),
                                shared_group="office")
    assert [v.name for v in tx(saved_filters.visible, olga)] == ["Mijn achterstand", "Toelating"]
    seen_by_otto = tx(saved_filters.visible, otto)
    assert [(v.name, v.mine) for v in seen_by_otto] == [("Toelating", False)]
    assert tx(saved_filters.get, otto, shared.id).criteria == {"element_id": "check_eligibility"}
    assert tx(saved_filters.visible, mila) == []
    with pytest.raises(NotFound):
        tx(saved_filters.get, otto, mine.id)
    with pytest.raises(Forbidden):
        tx(saved_filters.delete, otto, shared.id)
    with pytest.raises(Conflict):
        tx(saved_filters.save, olga, "Toelating", InboxFilter(overdue=True).to_dict())
    with pytest.raises(Forbidden):
        tx(saved_filters.save, mila, "Bureau", InboxFilter(overdue=True).to_dict(), shared_group="office")
    with pytest.raises(InvalidInput):
        tx(saved_filters.save, olga, "Leeg", InboxFilter().to_dict())  # no condition at all
    tx(saved_filters.delete, olga, shared.id)
    assert tx(saved_filters.visible, otto) == []


def test_the_holder_delegates_to_a_colleague_in_the_group(world: Driver) -> None:
    apply(world, "cas")
    olga, otto, engine = world.people["olga"], world.people["otto"], world.engine
    task = engine.inbox(olga)[0]
    engine.claim(olga, task.id)
    assert engine.delegate(olga, task.id, "otto").assignee == "otto"
    assert [t.id for t in engine.inbox(otto, filters=InboxFilter(scope="mine"))] == [task.id]
    with pytest.raises(InvalidInput):
        engine.delegate(otto, task.id, "mila")  # not in the office group
    with pytest.raises(NotFound):
        engine.delegate(otto, task.id, "nobody")
    history = engine.history(olga, task.instance_id)
    assert [h["detail"]["assignee"] for h in history if h["action"] == "delegated"] == ["otto"]


def test_only_staff_who_may_see_a_task_hand_it_over(world: Driver) -> None:
    """A process owner is staff, but not of the office and without its case data: he could
    assign, release and delegate the office's tasks, and the answer was the task with its
    case data (the candidate's motivation), which he may not open."""
    apply(world, "cas")
    olga, otto, engine = world.people["olga"], world.people["otto"], world.engine
    pia = world.person("pia", ["process_owner"], staff=True)
    task = engine.inbox(olga)[0]
    with pytest.raises(Forbidden):
        engine.assign(pia, task.id, "otto")
    engine.claim(olga, task.id)
    with pytest.raises(Forbidden):
        engine.unclaim(pia, task.id)
    with pytest.raises(Forbidden):
        engine.delegate(pia, task.id, "otto")
    assert [o.ok for o in engine.assign_many(pia, [task.id], "otto")] == [False]
    assert engine.task(olga, task.id).assignee == "olga"
    assert engine.assign(otto, task.id, "otto").assignee == "otto"  # the office's to do


def test_a_task_the_process_assigned_cannot_be_delegated_by_its_holder(world: Driver) -> None:
    to_dossier(world, "cas")
    cas = world.people["cas"]
    dossier = next(t for t in world.engine.inbox(cas) if t.element_id == "write_dossier")
    with pytest.raises(Forbidden):
        world.engine.delegate(cas, dossier.id, "bea")
    mila = world.people["mila"]
    with pytest.raises(Forbidden):
        world.engine.delegate(mila, dossier.id, "max")


def test_bulk_assign_reports_each_task(world: Driver) -> None:
    apply(world, "cas")
    apply(world, "bea")
    olga, engine = world.people["olga"], world.engine
    ids = [t.id for t in engine.inbox(olga)]
    outcomes = engine.assign_many(olga, [*ids, "gone-task"], "otto")
    assert [o.ok for o in outcomes] == [True, True, False]
    assert "gone-task" in outcomes[2].message
    assert {t.assignee for t in engine.inbox(world.people["otto"], filters=InboxFilter(scope="mine"))} == {"otto"}
    with pytest.raises(Forbidden):
        engine.assign_many(world.people["mila"], ids, "mila")
    with pytest.raises(InvalidInput):
        engine.assign_many(olga, [], "otto")
