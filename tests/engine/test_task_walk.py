"""``certflow.engine.spiff.all_tasks``: the walk of the task tree an advance makes after every
engine run, in place of ``workflow.get_tasks()``. It must give the very same tasks in the very
same order (the audit, the projections and the next advance's "before" are read off it), with
sub-processes, multi-instance tasks and SpiffWorkflow's depth limit; every advance in the tests
compares the two (CERTFLOW_VERIFY_STATE, tests/conftest.py), and the check bites."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from certflow.engine import spiff
from certflow.engine.spiff import all_tasks, is_completed, make_parser

NESTED = Path(__file__).parent / "data_restore" / "nested.bpmn"


def _nested() -> BpmnWorkflow:
    parser = make_parser()
    parser.add_bpmn_file(str(NESTED))
    workflow = BpmnWorkflow(parser.get_spec("nested"), parser.get_subprocess_specs("nested"))
    workflow.do_engine_steps()
    return workflow


def _same(a: list[object], b: list[object]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def test_the_walk_is_get_tasks_at_every_step_of_a_workflow_with_a_sub_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CERTFLOW_VERIFY_STATE", raising=False)  # compared here, not inside
    workflow = _nested()
    steps = subprocess_seen = 0
    while not workflow.is_completed():
        assert _same(all_tasks(workflow), workflow.get_tasks())
        subprocess_seen += bool(workflow.subprocesses)
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        ready[0].run()
        workflow.do_engine_steps()
        steps += 1
    assert _same(all_tasks(workflow), workflow.get_tasks())
    assert steps == 5 and subprocess_seen == 3


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 8])
def test_below_the_depth_limit_the_walk_stops_where_get_tasks_stops(
        monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    monkeypatch.delenv("CERTFLOW_VERIFY_STATE", raising=False)
    monkeypatch.setattr(spiff, "_MAX_DEPTH", limit)
    workflow = _nested()
    while not workflow.is_completed():
        walked, full = all_tasks(workflow), workflow.get_tasks(max_depth=limit)
        assert _same(walked, full)
        assert len(walked) < len(workflow.get_tasks()) or limit >= 8
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        ready[0].run()
        workflow.do_engine_steps()


def test_a_walk_that_differs_from_get_tasks_is_caught_by_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    workflow = _nested()
    all_tasks(workflow)  # agrees
    monkeypatch.setattr(spiff, "_MAX_DEPTH", 2)  # the walk stops at 2, get_tasks' check too: agrees
    all_tasks(workflow)
    original = BpmnWorkflow.get_tasks
    monkeypatch.setattr(BpmnWorkflow, "get_tasks", lambda self, *a, **k: original(self, *a, **k)[::-1])
    with pytest.raises(AssertionError, match="differs from workflow.get_tasks"):
        all_tasks(workflow)


def test_completion_read_off_the_walk_is_spiffworkflows_at_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CERTFLOW_VERIFY_STATE", raising=False)
    workflow = _nested()
    answers = []
    while True:
        answers.append(is_completed(workflow, all_tasks(workflow)))
        assert answers[-1] == workflow.is_completed()
        if answers[-1]:
            break
        workflow.get_tasks(state=TaskState.READY, manual=True)[0].run()
        workflow.do_engine_steps()
    assert answers == [False] * 5 + [True] and workflow.completed


def test_a_completion_read_wrongly_off_the_walk_is_caught_by_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    workflow = _nested()
    while not workflow.is_completed():
        workflow.get_tasks(state=TaskState.READY, manual=True)[0].run()
        workflow.do_engine_steps()
    workflow.completed = False  # not yet recorded: the walk is consulted
    wrong = [*all_tasks(workflow), SimpleNamespace(_state=TaskState.READY, workflow=workflow)]
    with pytest.raises(AssertionError, match="found the workflow completed"):
        is_completed(workflow, wrong)  # type: ignore[arg-type]
