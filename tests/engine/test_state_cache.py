"""A save reuses the dicts of tasks that had already finished (certflow.engine.spiff's
FinishedTaskCache) instead of converting the whole tree again. Every save in the tests is
checked against the plain serializer (CERTFLOW_VERIFY_STATE, tests/conftest.py); these tests
show that the check bites and that what is saved restores to the same instance."""

from __future__ import annotations

import pytest
from SpiffWorkflow.util.task import TaskState

from certflow.engine.spiff import state_from_dict, state_to_dict
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


def test_what_a_save_stores_restores_to_the_same_state(live: Harness) -> None:
    [(_, workflow, _)] = live.engine._live.values()
    saved = state_to_dict(workflow)
    definition = next(iter(live.engine._definitions.values()))
    restored = state_from_dict(saved, definition.spec, definition.subprocess_specs)
    assert state_to_dict(restored) == saved
    assert [t.task_spec.bpmn_id for t in restored.get_tasks(state=TaskState.READY)] == \
        [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY)]
