"""An advance that misses the live-workflow cache restores its workflow with
``certflow.engine.spiff.restore_state``, which builds the tasks directly instead of through
SpiffWorkflow's converters. Every restore in the tests is checked against SpiffWorkflow's own
(CERTFLOW_VERIFY_STATE, tests/conftest.py); these tests show the two agree at every point of a
lifecycle (also after a serializer-format migration, with multi-instance tasks and a
sub-process), that they behave alike afterwards, and that the check bites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from certflow.engine import runtime, spiff
from certflow.engine.migrations import migrate_state
from certflow.engine.spiff import _plain_from_dict, _shape, make_parser, restore_state, state_to_dict, walked_states
from tests.support import FLOW_DIR, Harness

NESTED = Path(__file__).parent / "data_restore" / "nested.bpmn"


def _stored(state: dict[str, Any]) -> dict[str, Any]:
    """The state as an advance reads it back: through JSON."""
    return json.loads(json.dumps(state))  # type: ignore[no-any-return]


def _agree(state: dict[str, Any], spec: Any, subs: dict[str, Any]) -> BpmnWorkflow:
    before = json.dumps(state, sort_keys=True)
    fast, states = restore_state(state, spec, subs)
    plain = _plain_from_dict(state, spec, subs)
    assert _shape(fast, state) == _shape(plain, state)
    assert states == walked_states(plain)
    assert state_to_dict(fast) == state_to_dict(plain) == state
    assert json.dumps(state, sort_keys=True) == before  # the stored dict is left as it was
    return fast


@pytest.fixture
def saved(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every state the flow's advances save, with the live cache off: each advance restores."""
    monkeypatch.setattr(runtime, "LIVE_WORKFLOWS", 0)
    states: list[dict[str, Any]] = []
    plain_save = runtime.state_to_dict

    def keep(workflow: BpmnWorkflow) -> dict[str, Any]:
        state = plain_save(workflow)
        states.append(_stored(state))
        return state

    monkeypatch.setattr(runtime, "state_to_dict", keep)
    harness.engine.deploy(harness.staff, FLOW_DIR)
    return states


def _definition(h: Harness) -> Any:
    return next(iter(h.engine._definitions.values()))


def _through_the_flow(h: Harness) -> str:
    return _through_the_flow_as(h, "K1")


def test_every_saved_state_of_a_lifecycle_restores_as_spiffworkflow_restores_it(
        harness: Harness, saved: list[dict[str, Any]]) -> None:
    instance_id = _through_the_flow(harness)
    assert harness.engine.instance(harness.staff, instance_id).status == "completed"
    assert harness.engine.live_hits == 0 and harness.engine.live_misses >= 3  # each advance restored
    definition = _definition(harness)
    assert len(saved) >= 4
    for state in saved:
        _agree(state, definition.spec, definition.subprocess_specs)


def test_a_restored_workflow_moves_on_as_spiffworkflows_does(harness: Harness, saved: list[dict[str, Any]]) -> None:
    harness.engine.start(harness.staff, "flow", "K1", {"key": "K1"})
    harness.run_jobs()
    definition = _definition(harness)
    state = saved[-1]
    fast, _ = restore_state(state, definition.spec, definition.subprocess_specs, harness.engine.script_engine)
    plain = _plain_from_dict(state, definition.spec, definition.subprocess_specs, harness.engine.script_engine)
    for workflow in (fast, plain):
        [review] = workflow.get_tasks(state=TaskState.READY, manual=True)
        review.data["approved"] = False
        review.run()
        workflow.do_engine_steps()
        assert workflow.is_completed()
    assert _renamed(spiff._PLAIN.to_dict(fast)) == _renamed(spiff._PLAIN.to_dict(plain))


def _renamed(state: dict[str, Any]) -> str:
    """A state with its task ids numbered in creation order and no state-change times: the
    two workflows ran at different moments and gave their new tasks random ids."""
    text = json.dumps(state, sort_keys=True)
    for n, tid in enumerate(state["tasks"]):
        text = text.replace(tid, f"task-{n}")
    renamed = json.loads(text)
    for task in renamed["tasks"].values():
        task["last_state_change"] = 0
    return json.dumps(renamed, sort_keys=True)


def test_a_state_in_an_older_serializer_format_restores_as_spiffworkflow_restores_it(
        harness: Harness, saved: list[dict[str, Any]]) -> None:
    _through_the_flow(harness)
    definition = _definition(harness)
    for state in saved:
        migrated = migrate_state(state, "spiff-1.4+certflow-1", definition.spec, definition.subprocess_specs)
        _agree(migrated, definition.spec, definition.subprocess_specs)


def test_multi_instance_tasks_and_a_sub_process_restore_as_spiffworkflow_restores_them() -> None:
    parser = make_parser()
    parser.add_bpmn_file(str(NESTED))
    spec, subs = parser.get_spec("nested"), parser.get_subprocess_specs("nested")
    workflow = BpmnWorkflow(spec, subs)
    workflow.do_engine_steps()
    seen = []
    while not workflow.is_completed():
        # The save path itself, finished-task cache and all (CERTFLOW_VERIFY_STATE compares it
        # with the plain serializer): a finished task's saved delta is on its parent's data,
        # which a multi-instance parent still changes after its children have finished.
        state = _stored(state_to_dict(workflow))
        _agree(state, spec, subs)
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        seen.append((ready[0].task_spec.bpmn_id, len(ready), len(workflow.subprocesses)))
        ready[0].data["n"] = len(seen)
        ready[0].run()
        workflow.do_engine_steps()
    assert seen == [("review_each", 2, 0), ("review_each", 1, 0), ("assess_each", 1, 1),
                    ("assess_each", 1, 1), ("close", 1, 1)]


def test_a_state_without_sub_processes_is_not_walked_again(harness: Harness, saved: list[dict[str, Any]],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _through_the_flow(harness)
    definition = _definition(harness)
    expected = [walked_states(_plain_from_dict(s, definition.spec, definition.subprocess_specs)) for s in saved]
    monkeypatch.delenv("CERTFLOW_VERIFY_STATE", raising=False)

    def walked(_workflow: BpmnWorkflow) -> Any:
        raise AssertionError("walked the restored tree")

    monkeypatch.setattr(spiff, "walked_states", walked)
    assert [restore_state(s, definition.spec, definition.subprocess_specs)[1] for s in saved] == expected


def test_a_restore_that_shares_data_differently_is_caught_by_the_check(
        harness: Harness, saved: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    _through_the_flow(harness)
    definition = _definition(harness)
    # The tasks after make_ref inherit its result (a dict): each must get a copy of it, not
    # the parent's own dict, or changing it in one task would change it in the other.
    state = saved[-1]
    assert isinstance(_plain_from_dict(state, definition.spec, definition.subprocess_specs).last_task.data["ref"], dict)
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    restore_state(state, definition.spec, definition.subprocess_specs)  # as it should be: passes
    monkeypatch.setattr(spiff, "_inherited", dict)
    with pytest.raises(AssertionError, match="fast restore built a different workflow"):
        restore_state(state, definition.spec, definition.subprocess_specs)


def test_a_state_the_direct_restore_does_not_know_goes_spiffworkflows_way(
        harness: Harness, saved: list[dict[str, Any]]) -> None:
    _through_the_flow(harness)
    definition = _definition(harness)
    state = _stored(saved[-1])
    first = next(k for k, t in state["tasks"].items()  # the start event's task
                 if definition.spec.task_specs[t["task_spec"]].bpmn_id == "start")
    upper = first.upper()  # UUID() reads it; str(uuid) never writes it
    state["tasks"] = {upper if k == first else k: {**t, "id": upper} if k == first else t
                      for k, t in state["tasks"].items()}
    for task in state["tasks"].values():
        task["children"] = [upper if c == first else c for c in task["children"]]
        task["parent"] = upper if task["parent"] == first else task["parent"]
    state["root"] = upper if state["root"] == first else state["root"]
    workflow, states = restore_state(state, definition.spec, definition.subprocess_specs)
    assert _shape(workflow, state) == _shape(_plain_from_dict(state, definition.spec, definition.subprocess_specs), state)
    assert states == walked_states(workflow) and UUID(first) in states


def test_the_save_after_a_restore_converts_only_the_unfinished_tasks(
        harness: Harness, saved: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    _through_the_flow(harness)
    definition = _definition(harness)
    converted: list[int] = []
    convert = spiff.TaskConverter.to_dict

    def counting(self: Any, task: Any) -> dict[str, Any]:
        converted.append(task.state)
        return convert(self, task)  # type: ignore[no-any-return]

    monkeypatch.setattr(spiff.TaskConverter, "to_dict", counting)
    monkeypatch.delenv("CERTFLOW_VERIFY_STATE", raising=False)  # its plain save converts them all
    for state in saved:
        workflow, _ = restore_state(state, definition.spec, definition.subprocess_specs)
        converted.clear()
        again = state_to_dict(workflow)
        unfinished = [t for t in workflow.tasks.values() if not t.state & TaskState.FINISHED_MASK]
        assert len(converted) == len(unfinished)
        assert again == spiff._PLAIN.to_dict(workflow) == state


def _audit_trail(h: Harness, instance_id: str) -> list[tuple[str, str | None]]:
    from sqlalchemy import select

    from certflow.store.db import session_scope
    from certflow.store.models import AuditEvent

    with session_scope() as s:
        return [(e.action, e.element_id) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.instance_id == instance_id).order_by(AuditEvent.id))]


def test_the_audit_trail_is_the_same_whether_an_advance_restores_or_finds_the_workflow_cached(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The task states an advance compares to find what changed (its audit rows) come from the
    restore on a miss and from the cache on a hit: the two must name tasks alike, or a miss
    would audit every task of the tree as having just changed."""
    harness.engine.deploy(harness.staff, FLOW_DIR)
    cached = _through_the_flow(harness)
    assert harness.engine.live_hits > 0
    monkeypatch.setattr(runtime, "LIVE_WORKFLOWS", 0)
    harness.engine._live.clear()
    misses = harness.engine.live_misses
    restored = _through_the_flow_as(harness, "K2")
    assert harness.engine.live_misses - misses >= 3
    trail = _audit_trail(harness, cached)
    assert trail == _audit_trail(harness, restored)
    assert [a for a, _ in trail].count("instance_completed") == 1


def _through_the_flow_as(h: Harness, key: str) -> str:
    instance_id = h.engine.start(h.staff, "flow", key, {"key": key}).id
    h.run_jobs()
    [review] = [t for t in h.engine.inbox(h.staff) if t.element_id == "review"]
    h.engine.complete(h.staff, review.id, {"approved": True})
    h.run_jobs()
    ref = h.engine.instance(h.staff, instance_id).data["ref"]
    h.engine.deliver_message(h.staff, "paid", {"amount": 1}, correlation={"ref": ref})
    h.run_jobs()
    return instance_id
