"""A save reuses the dicts of tasks that had already finished (certflow.engine.spiff's
FinishedTaskCache) instead of converting the whole tree again. Every save in the tests is
checked against the plain serializer (CERTFLOW_VERIFY_STATE, tests/conftest.py); these tests
show that the check bites and that what is saved restores to the same instance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from SpiffWorkflow.util.task import TaskState

from certflow.engine.rules import current_data
from certflow.engine.spiff import state_from_dict, state_json, state_to_dict
from certflow.store.db import session_scope
from certflow.store.models import Instance
from tests.engine.test_runtime import edited
from tests.support import FLOW_DIR, Harness


@pytest.fixture
def live(harness: Harness) -> Harness:
    harness.engine.deploy(harness.staff, FLOW_DIR)
    harness.engine.start(harness.staff, "flow", "K1", {"key": "K1"})
    harness.run_jobs()
    return harness


def test_a_finished_task_changed_in_place_is_caught_by_the_check(live: Harness,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    [(_, workflow, _)] = live.engine._live.values()
    state_to_dict(workflow)  # fills the cache
    finished = next(t for t in workflow.get_tasks() if t.state == TaskState.COMPLETED and t.data.get("key"))
    finished.data["key"] = "changed behind the cache's back"  # same size, same state
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    with pytest.raises(AssertionError, match="cache changed the serialized state"):
        state_to_dict(workflow)


def test_the_saved_text_is_the_plain_encoding_and_a_stale_piece_is_caught(live: Harness,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A save writes its finished tasks' JSON text as encoded at an earlier save (state_json):
    the text is exactly ``json.dumps`` of the state, and the check catches a piece gone stale."""
    [(_, workflow, _)] = live.engine._live.values()
    saved = state_to_dict(workflow)
    monkeypatch.delenv("CERTFLOW_VERIFY_STATE", raising=False)
    assert state_json(workflow, saved) == json.dumps(saved)  # fills the text cache
    assert state_json(workflow, saved) == json.dumps(saved)  # from it
    finished = next(d for d in saved["tasks"].values() if d["state"] & TaskState.FINISHED_MASK)
    finished["triggered"] = not finished["triggered"]  # the dict changed behind the cache's back
    assert state_json(workflow, saved) != json.dumps(saved)
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    with pytest.raises(AssertionError, match="JSON cache changed the serialized state"):
        state_json(workflow, saved)


def test_what_a_save_stores_restores_to_the_same_state(live: Harness) -> None:
    [(_, workflow, _)] = live.engine._live.values()
    saved = state_to_dict(workflow)
    definition = next(iter(live.engine._definitions.values()))
    restored = state_from_dict(saved, definition.spec, definition.subprocess_specs)
    assert state_to_dict(restored) == saved
    assert [t.task_spec.bpmn_id for t in restored.get_tasks(state=TaskState.READY)] == \
        [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY)]


# A script step between the review and the end that drops one variable and sets another: the
# last task's data is then a delta with a deletion on its parent's.
DROPS_KEY = ('<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="approved_gw"/>',
             '<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="tidy"/>'
             '<bpmn:scriptTask id="tidy" name="Tidy"><bpmn:incoming>f3</bpmn:incoming>'
             '<bpmn:outgoing>f3b</bpmn:outgoing><bpmn:script>del key\ntidied = True</bpmn:script></bpmn:scriptTask>'
             '<bpmn:sequenceFlow id="f3b" sourceRef="tidy" targetRef="approved_gw"/>')


def test_a_finished_instance_shows_the_data_its_workflow_ends_with(harness: Harness, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The case page of a completed instance reads its last task's data off the saved state's
    branch to that task, not a restored workflow: the same data, deletions included."""
    monkeypatch.delenv("CERTFLOW_VERIFY_STATE", raising=False)  # compared here, not by the check
    harness.engine.deploy(harness.staff, edited(tmp_path, *DROPS_KEY))
    instance_id = harness.engine.start(harness.staff, "flow", "K1", {"key": "K1"}).id
    harness.run_jobs()
    [task] = [t for t in harness.engine.inbox(harness.staff) if t.element_id == "review"]
    harness.engine.complete(harness.staff, task.id, {"approved": False})
    view = harness.engine.instance(harness.staff, instance_id)
    assert view.status == "completed"
    assert view.data["tidied"] is True and "key" not in view.data and view.data["approved"] is False
    with session_scope() as s:
        instance = s.get(Instance, instance_id)
        assert instance is not None
        definition = harness.engine.definition(s, instance.definition_id)
        assert view.data == current_data(harness.engine.restore(instance, definition))


def test_a_save_hands_only_the_tasks_not_saved_before_to_the_converters(live: Harness,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The finished tasks whose saved dicts are still good are taken from the cache by the
    workflow's converter itself (no dispatch per task through the registry); the rest are
    converted as before, and the state is the plain serializer's (CERTFLOW_VERIFY_STATE)."""
    from certflow.engine import spiff

    [(_, workflow, _)] = live.engine._live.values()
    first = state_to_dict(workflow)  # fills the cache
    handed: list[str] = []
    registry = spiff.SERIALIZER.registry
    dispatch = registry.convert_to_dict["Task"]

    def counting(task: object, **kwargs: object) -> object:
        handed.append(str(getattr(task, "id")))
        return dispatch(task, **kwargs)

    monkeypatch.setitem(registry.convert_to_dict, "Task", counting)
    again = state_to_dict(workflow)
    assert again == first
    reused = {tid for tid, d in again["tasks"].items() if d is first["tasks"][tid]}
    assert reused and not reused & set(handed)
    assert sorted(handed) == sorted(tid for tid in again["tasks"] if tid not in reused)


def test_predicted_tasks_without_data_of_their_own_are_reused_until_what_fixes_their_dict_changes(
        live: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A predicted task (the diagram ahead) with no data of its own saves as a delta deleting its
    parent's keys: its dict is reused from the last save while its state, children and its
    parent's keys stay the same, and converted again when one changes (a new key on the parent,
    whatever its value). Each save equals the plain serializer's (CERTFLOW_VERIFY_STATE)."""
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    [(_, workflow, _)] = live.engine._live.values()
    first = state_to_dict(workflow)
    predicted = [t for t in workflow.get_tasks(state=TaskState.PREDICTED_MASK)
                 if not t.data and not t.internal_data and t.parent is not None]
    assert predicted
    again = state_to_dict(workflow)
    assert all(again["tasks"][str(t.id)] is first["tasks"][str(t.id)] for t in predicted)
    task = predicted[0]
    parent = task.parent
    assert parent is not None
    parent.data["a_new_key"] = 1  # the task's delta now deletes one more key
    changed = state_to_dict(workflow)
    assert changed["tasks"][str(task.id)] is not first["tasks"][str(task.id)]
    assert "a_new_key" in changed["tasks"][str(task.id)]["delta"]["deletions"]
    parent.data["a_new_key"] = 2  # a value: the same keys, the same dict
    assert state_to_dict(workflow)["tasks"][str(task.id)] is changed["tasks"][str(task.id)]
    text = state_json(workflow, changed)
    assert text == json.dumps(changed)


def test_a_predicted_task_given_data_is_converted_afresh(live: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    [(_, workflow, _)] = live.engine._live.values()
    first = state_to_dict(workflow)
    task = next(t for t in workflow.get_tasks(state=TaskState.PREDICTED_MASK)
                if not t.data and not t.internal_data and t.parent is not None)
    task.internal_data["note"] = "x"
    again = state_to_dict(workflow)
    assert again["tasks"][str(task.id)] is not first["tasks"][str(task.id)]
    assert again["tasks"][str(task.id)]["internal_data"] == {"note": "x"}
