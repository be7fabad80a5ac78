"""Moving a running instance onto a newer version of its process.

A running instance keeps the version it started on (RUNTIME.md 8) until staff move it on
explicitly. The move is safe only when every element the instance stands on, or has passed,
is still in the new version with the same id and the same kind: the state is a tree of tasks
that refer to their elements by id, and a task whose element is gone cannot be restored.
Anything else is refused before anything changes, naming the element and why.

What moves: each task is re-pointed to the new version's element of the same id. What the
instance would do next (the predicted tasks below the open ones) is predicted again from the
new version, so a step inserted after the current one is taken. What stays: the open tasks
themselves, with their ids (claims and queue entries survive), data, service-task attempts
and running timers (a timer already started keeps its due time; a changed duration applies
the next time the timer starts).

SpiffWorkflow's own ``migrate_workflow`` (bpmn.util.diff) resets open tasks instead, which
restarts their timers and drops a waiting service task's attempt; hence this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

OPEN = TaskState.READY | TaskState.STARTED | TaskState.WAITING


@dataclass(frozen=True)
class Refusal:
    """Why an instance cannot move to the new version: the element and the reason."""

    element_id: str
    element_name: str
    reason: str  # "missing" | "type_changed" | "passed_missing" | "subprocess"
    old_type: str = ""
    new_type: str = ""

    def message(self, version: int) -> str:
        label = f"{self.element_name} ({self.element_id})" if self.element_name != self.element_id else self.element_id
        if self.reason == "missing":
            return f"the open element {label} does not exist in version {version}"
        if self.reason == "type_changed":
            return (f"the open element {label} is a {self.old_type} here but a {self.new_type} "
                    f"in version {version}")
        if self.reason == "passed_missing":
            return f"the element {label}, which this instance already passed, was removed in version {version}"
        return f"the instance runs a subprocess ({label}); moving subprocesses is not supported"


def element_of(spec: Any) -> tuple[str, str]:
    """The diagram element a task spec stands for: (id, name). Internal specs SpiffWorkflow
    adds (``review.BoundaryEventSplit``) stand for the element they belong to."""
    bpmn_id = getattr(spec, "bpmn_id", None)
    if bpmn_id:
        return str(bpmn_id), str(getattr(spec, "bpmn_name", None) or bpmn_id)
    base = str(spec.name).split(".")[0]
    return base, base


def _is_prediction(task: Task) -> bool:
    """A task the engine only predicted: below an unfinished task, or LIKELY/MAYBE."""
    if task.has_state(TaskState.PREDICTED_MASK):
        return True
    return task.has_state(TaskState.FUTURE) and task.parent is not None and \
        not task.parent.has_state(TaskState.FINISHED_MASK)


def check(workflow: BpmnWorkflow, new_spec: Any) -> list[Refusal]:
    """Everything that stops ``workflow`` moving to ``new_spec``; open elements first."""
    if workflow.subprocesses:
        first = next(iter(workflow.subprocesses.values()))
        return [Refusal(first.spec.name, first.spec.name, "subprocess")]
    refusals: dict[str, Refusal] = {}
    passed: dict[str, Refusal] = {}
    for task in workflow.get_tasks():
        if _is_prediction(task):
            continue
        spec = task.task_spec
        target = new_spec.task_specs.get(spec.name)
        element_id, name = element_of(spec)
        if task.has_state(OPEN):
            if target is None:
                refusals.setdefault(element_id, Refusal(element_id, name, "missing"))
            elif type(target).__name__ != type(spec).__name__:
                refusals.setdefault(element_id, Refusal(element_id, name, "type_changed",
                                                        type(spec).__name__, type(target).__name__))
        elif target is None or type(target).__name__ != type(spec).__name__:
            passed.setdefault(element_id, Refusal(element_id, name, "passed_missing"))
    return list(refusals.values()) + [p for k, p in passed.items() if k not in refusals]


def migrate(workflow: BpmnWorkflow, new_spec: Any, subprocess_specs: dict[str, Any]) -> None:
    """Re-point ``workflow`` to ``new_spec`` (``check`` found nothing) and predict again."""
    predictions = [t for t in workflow.get_tasks() if _is_prediction(t)]
    keep = [t for t in workflow.get_tasks() if not _is_prediction(t)]
    workflow.spec = new_spec
    workflow.subprocess_specs = subprocess_specs
    for task in keep:
        task.task_spec = new_spec.task_specs[task.task_spec.name]
    # Predictions hang below unfinished tasks: drop them all, then predict from the new spec.
    roots = [t for t in keep if not t.has_state(TaskState.FINISHED_MASK)]
    for task in roots:
        for child in list(task.children):
            if child in predictions:
                workflow._remove_task(child.id)
    for task in roots:
        spec = task.task_spec
        if task.has_state(TaskState.FUTURE):
            spec._predict(task, mask=TaskState.PREDICTED_MASK | TaskState.FUTURE)
            continue
        spec._predict_hook(task)
        for child in task.children:
            child.task_spec._predict(child, mask=TaskState.PREDICTED_MASK | TaskState.FUTURE)
