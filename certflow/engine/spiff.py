"""How certflow adapts SpiffWorkflow 3.2: the parser, the serializer registry, asynchronous
service tasks and the clock seam for timers.

Service tasks never call a handler in-process. ``AsyncServiceTask._execute`` evaluates the
operator's parameters into the task's internal data and returns None, which leaves the task
STARTED (waiting); the runtime writes a job row for it in the same transaction, and a worker's
result completes it later (``complete_service_task``).

SpiffWorkflow's timers read ``datetime.now(timezone.utc)`` directly, with no way to inject a
clock. Rebinding ``datetime`` in that one module to a subclass whose ``now`` asks certflow's
clock is the smallest seam that makes every timer obey the controllable clock; the module's
other uses of ``datetime`` (fromisoformat, combine) behave exactly as before.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from certflow.clock import CLOCK
from certflow.localtime import LOCAL_TZ

SERVICE_PARAMS = "certflow_params"


class _ClockDatetime(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> "_ClockDatetime":  # type: ignore[override]
        now = CLOCK.now()
        value = now if tz is None else now.astimezone(tz)
        return cls.fromtimestamp(value.timestamp(), value.tzinfo)


spiff_timer.datetime = _ClockDatetime  # type: ignore[misc]

# A cycle timer that fires late (the scheduler was down, the clock moved across two years)
# fires once per period it missed, each in its own branch. Each branch gets the time its
# period was due, in Dutch time, as ``timer_due``, so the branch does the work of *that*
# period (the yearly fee run invoices the year it was due for, not the year it ran in).
TIMER_DUE = "timer_due"
_cycle_update = spiff_timer.CycleTimerEventDefinition.update_task


def _update_stamping_due(self: Any, my_task: Task) -> None:
    known = {id(child) for child in my_task.children}
    _cycle_update(self, my_task)
    fresh = [child for child in my_task.children if id(child) not in known]
    value = my_task._get_internal_data("event_value")
    if fresh and isinstance(value, dict):
        due = datetime.fromisoformat(value["next"]) - timedelta(seconds=value["duration"])
        for child in fresh:
            child.data[TIMER_DUE] = due.astimezone(LOCAL_TZ).isoformat()


spiff_timer.CycleTimerEventDefinition.update_task = _update_stamping_due  # type: ignore[method-assign]


# SpiffWorkflow logs every task state change at INFO, and while its loggers' own level is
# unset (0 < INFO) each line's extras carry the task's data and internal data: in a worker's
# JSON logs that was nine lines per fired timer, with the process data (names, e-mail
# addresses) in them, and about half the worker's time per timer. The audit table already
# records every transition, so these loggers stay at WARNING (set one to DEBUG to trace).
_SPIFF_LOGGERS = ("spiff.task", "spiff.workflow", "spiff.data", "spiff.dmn")
for _name in _SPIFF_LOGGERS:
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)
_task_log = logging.getLogger("spiff.task")


def _set_state(self: Task, value: int) -> None:
    """Task._set_state without building the log extras (a dict per change) nobody reads."""
    if value != self._state:
        now = time.time()
        elapsed, self.last_state_change = now - self.last_state_change, now
        self._state = value
        if _task_log.isEnabledFor(logging.INFO):
            _task_log.info(f"State changed to {TaskState.get_name(value)}",
                           extra=self.collect_log_extras({"elapsed": elapsed}))
    elif _task_log.isEnabledFor(logging.DEBUG):
        _task_log.debug(f"State set to {TaskState.get_name(value)}", extra=self.collect_log_extras())


Task._set_state = _set_state  # type: ignore[method-assign]


class AsyncServiceTask(ServiceTask):  # type: ignore[misc]
    """A service task that waits for a worker instead of calling the handler in-process."""

    def _execute(self, task: Task) -> None:
        params = {name: value["value"] for name, value in self.evaluate_params(task).items()}
        task.internal_data[SERVICE_PARAMS] = params
        return None


def complete_service_task(task: Task, result: dict[str, Any]) -> None:
    task.data[task.task_spec.result_variable] = result
    task.internal_data.pop(SERVICE_PARAMS, None)
    task.complete()


class CertflowParser(SpiffBpmnParser):  # type: ignore[misc]
    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, AsyncServiceTask),
    }


def make_parser() -> CertflowParser:
    # The validator checks every file against the BPMN + SpiffWorkflow XSDs; SpiffWorkflow
    # parses with lxml and resolve_entities=False, so external entities are never fetched.
    return CertflowParser(validator=VALIDATOR)


class StateOnlyConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Serializes a workflow WITHOUT its spec: the spec is stored once per definition version
    (it is ~60% of a full serialization) and handed back in on restore, already parsed."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(  # type: ignore[override]
        self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None
    ) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


# Where a (sub)workflow keeps the dicts its finished tasks were last saved as.
_SAVED_TASKS = "_certflow_saved_tasks"


class FinishedTaskCache(TaskConverter):  # type: ignore[misc]
    """Serializes a task once it has finished, then reuses that dict on every later save.

    Most of an instance's tree is finished (COMPLETED, CANCELLED, ERROR) and does not change
    again, yet a whole-state save converted every task on every advance (~15% of an
    advance). A finished task's dict is kept on its workflow object (the live-workflow cache
    holds that between advances) with a key of everything that could still change on it:
    state, last state change, triggered, children, and the sizes of data and internal data.
    Any difference and the task is converted afresh. The output is the same dict the plain
    converter gives: ``CERTFLOW_VERIFY_STATE=1`` (set in the tests) compares every save."""

    def to_dict(self, task: Task) -> dict[str, Any]:
        if not task._state & TaskState.FINISHED_MASK:
            return super().to_dict(task)  # type: ignore[no-any-return]
        saved = task.workflow.__dict__.setdefault(_SAVED_TASKS, {})
        key = (task._state, task.last_state_change, task.triggered, tuple(task._children),
               len(task.data), len(task.internal_data))
        hit = saved.get(task.id)
        if hit is not None and hit[0] == key:
            return hit[1]  # type: ignore[no-any-return]
        dct: dict[str, Any] = super().to_dict(task)
        saved[task.id] = (key, dct)
        return dct


def _registry(cache_finished: bool = True) -> Any:
    config = dict(SPIFF_CONFIG)
    config[AsyncServiceTask] = ServiceTaskConverter
    config[BpmnWorkflow] = StateOnlyConverter
    if cache_finished:
        config[Task] = FinishedTaskCache
    return BpmnWorkflowSerializer.configure(config)


SERIALIZER = BpmnWorkflowSerializer(_registry())
SERIALIZER_VERSION = f"spiff-{SERIALIZER.VERSION}+certflow-1"
_PLAIN = BpmnWorkflowSerializer(_registry(cache_finished=False))  # what the cache must equal


def spec_to_dict(spec: Any, subprocess_specs: dict[str, Any]) -> dict[str, Any]:
    registry = SERIALIZER.registry
    return {
        "spec": registry.convert(spec),
        "subprocess_specs": {k: registry.convert(v) for k, v in subprocess_specs.items()},
    }


def spec_from_dict(dct: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    registry = SERIALIZER.registry
    spec = registry.restore(dct["spec"])
    subs = {k: registry.restore(v) for k, v in dct["subprocess_specs"].items()}
    return spec, subs


def state_to_dict(workflow: BpmnWorkflow) -> dict[str, Any]:
    state: dict[str, Any] = SERIALIZER.to_dict(workflow)
    if os.environ.get("CERTFLOW_VERIFY_STATE") == "1":
        plain = _PLAIN.to_dict(workflow)
        if _canonical(state) != _canonical(plain):
            raise AssertionError("the saved-task cache changed the serialized state")
    return state


def _canonical(state: dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True, default=str)


def state_from_dict(dct: dict[str, Any], spec: Any, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
    # The converters pop keys from the top level and from each subprocess; copy just those
    # levels so the caller's dict (an ORM attribute) stays intact, without a deep copy.
    dct = dict(dct)
    dct["subprocesses"] = {k: dict(v) for k, v in dct["subprocesses"].items()}
    workflow: BpmnWorkflow = SERIALIZER.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs)
    return workflow


def find_task(workflow: BpmnWorkflow, task_id: str) -> Task | None:
    """The task with this id, or None when it is gone (a boundary event can remove a branch's
    tasks from the tree entirely, not just cancel them)."""
    try:
        return workflow.get_task_from_id(UUID(task_id))
    except Exception:  # TaskNotFoundException, or a malformed id
        return None
