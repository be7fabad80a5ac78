"""``certflow.engine.spiff.all_tasks``: the walk of the task tree an advance makes after every
engine run, in place of ``workflow.get_tasks()``. It must give the very same tasks in the very
same order (the audit, the projections and the next advance's "before" are read off it), with
sub-processes, multi-instance tasks and SpiffWorkflow's depth limit; every advance in the tests
compares the two (CERTFLOW_VERIFY_STATE, tests/conftest.py), and the check bites.

The same for the walks by state that certflow's engine steps make (``_walk``: READY tasks to
run, WAITING tasks to update after each completion) in place of SpiffWorkflow's iterators, and
for the engine steps themselves: a workflow moved by them ends each step as SpiffWorkflow's own
``do_engine_steps`` leaves it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.util.task import TaskIterator, TaskState

from certflow.engine import spiff
from certflow.engine.sandbox_builtins import make_date_helpers
from certflow.engine.spiff import all_tasks, is_completed, make_parser

NESTED = Path(__file__).parent / "data_restore" / "nested.bpmn"
PROCESSES = Path(__file__).parents[2] / "processes"
CASEWORK = Path(__file__).parent / "data_escalation" / "casework" / "casework.bpmn"
# Every state and the masks SpiffWorkflow's iterators treat apart (predicted, definite, finished).
STATES = [TaskState.MAYBE, TaskState.LIKELY, TaskState.FUTURE, TaskState.WAITING, TaskState.READY,
          TaskState.STARTED, TaskState.COMPLETED, TaskState.CANCELLED, TaskState.PREDICTED_MASK,
          TaskState.DEFINITE_MASK, TaskState.FINISHED_MASK, TaskState.ANY_MASK]


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


def _every_step(workflow: BpmnWorkflow) -> Iterator[BpmnWorkflow]:
    """``workflow`` as it is now and after each step to its end: its first READY person's task
    done, then SpiffWorkflow's engine steps."""
    yield workflow
    while not workflow.is_completed():
        workflow.get_tasks(state=TaskState.READY, manual=True)[0].run()
        workflow.do_engine_steps()
        yield workflow


def _certification() -> BpmnWorkflow:
    """processes/certification, bare: its timers, boundary events and message wait give the
    walks WAITING tasks to find. Its diagrams' date helpers read today, as its timers do."""
    parser = make_parser()
    for path in sorted((PROCESSES / "certification").glob("*.bpmn")):
        parser.add_bpmn_file(str(path))
    helpers = make_date_helpers(lambda: datetime.now(timezone.utc))
    return BpmnWorkflow(parser.get_spec("certification"), parser.get_subprocess_specs("certification"),
                        script_engine=PythonScriptEngine(TaskDataEnvironment(helpers)))


def _walks_agree(workflow: BpmnWorkflow) -> int:
    """Assert that every walk by state is SpiffWorkflow's; the number of WAITING tasks seen."""
    for state in STATES:
        assert _same(list(spiff._walk(workflow.task_tree, state, bpmn=True)), workflow.get_tasks(state=state))
        assert _same(list(spiff._walk(workflow.task_tree, state, bpmn=False)),
                     list(TaskIterator(workflow.task_tree, state=state)))
        for subprocess in workflow.subprocesses.values():
            assert _same(list(spiff._walk(subprocess.task_tree, state, bpmn=True)), subprocess.get_tasks(state=state))
    return len(workflow.get_tasks(state=TaskState.WAITING))


def test_the_walks_by_state_are_spiffworkflows_iterators_at_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CERTFLOW_VERIFY_STATE", raising=False)
    for workflow in _every_step(_nested()):
        _walks_agree(workflow)
    waiting = [_walks_agree(theirs) for theirs, _ours, _step in _side_by_side()]
    assert sum(waiting) > 0


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_below_the_depth_limit_the_walks_by_state_stop_where_the_iterators_stop(
        monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    monkeypatch.delenv("CERTFLOW_VERIFY_STATE", raising=False)
    monkeypatch.setattr(spiff, "_MAX_DEPTH", limit)
    for workflow in _every_step(_nested()):
        for state in STATES:
            assert _same(list(spiff._walk(workflow.task_tree, state, bpmn=True)),
                         workflow.get_tasks(state=state, max_depth=limit))
            assert _same(list(spiff._walk(workflow.task_tree, state, bpmn=False)),
                         list(TaskIterator(workflow.task_tree, state=state, max_depth=limit)))


# What the certification's handlers return, as far as the diagram reads it.
RESULTS = {
    "invoicing/create_invoice": {"invoice_number": "2026-000001", "total": "786.50",
                                 "payment_reference": "1000000000000001"},
    "certificates/issue": {"certificate_id": "c", "register_number": "RL-2026-00001", "valid_from": "2026-11-28",
                           "valid_until": "2029-11-28"},
}
CERTIFICATION_STEPS = [
    ("check_eligibility", {"eligible": True, "remarks": ""}), ("pay", {}),
    ("assign_mentor", {"mentor": "mila"}),
    ("write_dossier", {"knowledge": "k", "tasks": "t", "competences": "c", "hours_spent": 30}),
    ("review_dossier", {"approved": True, "feedback": "ok"}),
    ("oral_assessment", {"advice": "positive", "notes": "ok"}),
    ("decide_certification", {"granted": True, "reason": "ok"}),
]


def _settle(workflow: BpmnWorkflow, ours: bool) -> None:
    """Engine steps (certflow's or SpiffWorkflow's) until no service task waits: each one's
    result is delivered as a worker's would be."""
    while True:
        spiff.do_engine_steps(workflow) if ours else workflow.do_engine_steps()
        started = [t for t in workflow.get_tasks(state=TaskState.STARTED)
                   if isinstance(t.task_spec, spiff.AsyncServiceTask)]
        if not started:
            return
        for task in started:
            spiff.complete_service_task(task, dict(RESULTS.get(task.task_spec.operation_name, {"ok": True})))


def _side_by_side() -> Iterator[tuple[BpmnWorkflow, BpmnWorkflow, str]]:
    """One certification moved by SpiffWorkflow's ``do_engine_steps`` and one by certflow's
    (with ``walk_faster``), the same steps; after each step both, and the step."""
    theirs, ours = _certification(), spiff.walk_faster(_certification())
    for mine, workflow in ((False, theirs), (True, ours)):
        workflow.get_tasks(state=TaskState.READY)[0].data.update(
            candidate="cas", eligibility_route="hbo_diploma", motivation="walks", business_key="W1")
        _settle(workflow, mine)
    yield theirs, ours, "start"
    for element, data in CERTIFICATION_STEPS:
        for mine, workflow in ((False, theirs), (True, ours)):
            if element == "pay":
                [task] = [t for t in workflow.get_tasks(state=TaskState.WAITING)
                          if t.task_spec.bpmn_id == "wait_payment"]
                workflow.catch(BpmnEvent(task.task_spec.event_definition, {"amount": "786.50"}))
            else:
                [task] = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
                          if t.task_spec.bpmn_id == element]
                task.data.update(data)
                task.run()
            _settle(workflow, mine)
        yield theirs, ours, element


def _shape_of(workflow: BpmnWorkflow) -> list[tuple[str, str, dict[str, object]]]:
    return [(t.task_spec.name, TaskState.get_name(t.state), t.data) for t in workflow.get_tasks()]


def test_certflows_engine_steps_leave_a_workflow_as_spiffworkflows_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")  # and every walk on the way is checked
    steps = []
    for theirs, ours, step in _side_by_side():
        assert _shape_of(ours) == _shape_of(theirs), step
        steps.append(step)
    assert steps == ["start"] + [element for element, _ in CERTIFICATION_STEPS]
    assert theirs.is_completed() and ours.is_completed() and ours.data == theirs.data


def _casework() -> BpmnWorkflow:
    parser = make_parser()
    parser.add_bpmn_file(str(CASEWORK))
    return BpmnWorkflow(parser.get_spec("casework"), parser.get_subprocess_specs("casework"))


def test_a_parallel_join_waits_and_then_goes_on_as_in_spiffworkflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The join waits (WAITING) for the second branch; it is the update of waiting tasks after
    each completion that lets it go on."""
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    theirs, ours = _casework(), spiff.walk_faster(_casework())
    for mine, workflow in ((False, theirs), (True, ours)):
        _settle(workflow, mine)
    for element in ("assess", "answer"):
        for mine, workflow in ((False, theirs), (True, ours)):
            [task] = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
                      if t.task_spec.bpmn_id == element]
            task.run()
            _settle(workflow, mine)
        assert _shape_of(ours) == _shape_of(theirs), element
        if element == "assess":
            assert [t.task_spec.bpmn_id for t in ours.get_tasks(state=TaskState.WAITING)] == ["join"]
    assert ours.is_completed() and theirs.is_completed()


def test_a_walk_by_state_that_differs_from_spiffworkflows_is_caught_by_the_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    original = spiff._walk

    def skip_first(root: object, state: int, bpmn: bool, deep: bool = True) -> Iterator[object]:
        return iter(list(original(root, state, bpmn, deep))[1:])  # type: ignore[arg-type]

    steps = _side_by_side()
    next(steps)
    _theirs, ours, _step = next(steps)  # eligible: the invoice is out, payment awaited
    assert ours.get_tasks(state=TaskState.WAITING)
    monkeypatch.setattr(spiff, "_walk", skip_first)
    with pytest.raises(AssertionError, match="the WAITING walk differs"):
        ours.update_waiting_tasks()
    with pytest.raises(AssertionError, match="the READY walk differs"):
        spiff.do_engine_steps(_nested())
