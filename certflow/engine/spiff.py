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

import copy
import json
import logging
import os
import time
from datetime import datetime, timedelta, tzinfo
from collections.abc import Iterator
from types import MethodType
from typing import Any
from uuid import UUID, SafeUUID

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskIterator, TaskState

from certflow.clock import CLOCK
from certflow.store.db import EncodedJSON
from certflow.localtime import LOCAL_TZ

SERVICE_PARAMS = "certflow_params"


def verifying() -> bool:
    """``CERTFLOW_VERIFY_STATE=1`` (set in every test): each fast path of a save or a view
    is checked against the plain way it replaces. Read on each call: tests switch it."""
    return os.environ.get("CERTFLOW_VERIFY_STATE") == "1"


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
        # WorkflowConverter.to_dict: the same keys in the same order.
        registry = self.registry
        dct: dict[str, Any] = {
            "data": registry.convert(registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "tasks": self.tasks_to_dict(workflow),
            "root": str(workflow.task_tree.id),
        }
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def tasks_to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        return self.mapping_to_dict(workflow.tasks)  # type: ignore[no-any-return]

    def from_dict(  # type: ignore[override]
        self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None,
        script_engine: Any = None, restoring: "_Restore | None" = None,
    ) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs, script_engine=script_engine, deserializing=True)
        if restoring is None:  # SpiffWorkflow's own way, through the registry
            workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
            workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        else:  # the same tasks, built directly (restore_state)
            workflow.tasks = restoring.tasks(dct["tasks"], workflow, dct["root"])
            workflow.task_tree = workflow.tasks.get(restoring.uuid(dct["root"]))
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
    converter gives: ``CERTFLOW_VERIFY_STATE=1`` (set in the tests) compares every save.

    A task's data is saved as a delta on its parent's, so its dict is only final once the
    parent has finished too: a multi-instance task, still running, changes its own data after
    its children have finished (it gathers their outputs). Until then it is converted afresh."""

    def to_dict(self, task: Task) -> dict[str, Any]:
        parent = task.parent
        if not task._state & TaskState.FINISHED_MASK or (
                parent is not None and not parent._state & TaskState.FINISHED_MASK):
            return super().to_dict(task)  # type: ignore[no-any-return]
        saved = task.workflow.__dict__.setdefault(_SAVED_TASKS, {})
        key = _saved_key(task)
        hit = saved.get(task.id)
        if hit is not None and hit[0] == key:
            return hit[1]  # type: ignore[no-any-return]
        dct: dict[str, Any] = super().to_dict(task)
        saved[task.id] = (key, dct)
        return dct


def _saved_key(task: Task) -> tuple[Any, ...]:
    """What could still change on a finished task (``FinishedTaskCache``)."""
    return (task._state, task.last_state_change, task.triggered, tuple(task._children),
            len(task.data), len(task.internal_data))


class CachedStateConverter(StateOnlyConverter):
    """The workflow converter of the registry whose tasks go through ``FinishedTaskCache``.

    A task whose saved dict is still good (the check of ``FinishedTaskCache.to_dict``) is
    taken from the cache here, without the registry's dispatch or making its id's text again
    (the dict holds it, and the registry added its typename when it was made); any other
    goes through the registry as before.

    Predicted tasks (FUTURE, LIKELY, MAYBE: the rest of the diagram ahead of the instance)
    are two thirds of the unfinished tasks a save converts, and hardly change between saves.
    One with no data and no internal data of its own, as they are until they become ready,
    saves as a delta that deletes every key of its parent's data; so its dict is fixed by its
    state, last state change, triggered flag, children and the keys of its parent's data,
    and it is reused while those stay the same (``_predicted``). Only this save's entries are
    kept: predicted tasks come and go as gateways decide."""

    def tasks_to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        saved = workflow.__dict__.get(_SAVED_TASKS, {})
        predicted_before = workflow.__dict__.get(_SAVED_PREDICTED, {})
        predicted: dict[UUID, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        finished, predicted_mask = TaskState.FINISHED_MASK, TaskState.PREDICTED_MASK
        tasks, convert = workflow.tasks, self.registry.convert
        out: dict[str, Any] = {}
        for tid, task in tasks.items():
            state = task._state
            if state & finished:
                hit = saved.get(tid)
                if hit is not None:
                    parent = tasks.get(task._parent) if task._parent is not None else None  # task.parent
                    if (parent is None or parent._state & finished) and hit[0] == _saved_key(task):
                        dct: dict[str, Any] = hit[1]
                        out[dct["id"]] = dct
                        continue
            elif state & predicted_mask and not task.data and not task.internal_data and task._parent is not None:
                parent = tasks.get(task._parent)
                if parent is not None:
                    key = (state, task.last_state_change, task.triggered, tuple(task._children), tuple(parent.data))
                    entry = predicted_before.get(tid)
                    if entry is None or entry[0] != key:
                        entry = (key, convert(task))
                    predicted[tid] = entry
                    out[entry[1]["id"]] = entry[1]
                    continue
            out[str(tid)] = convert(task)
        workflow.__dict__[_SAVED_PREDICTED] = predicted
        return out


# Where the top workflow keeps the dicts its predicted tasks were last saved as
# (CachedStateConverter).
_SAVED_PREDICTED = "_certflow_saved_predicted"


# Where a (sub)workflow keeps the JSON text of its finished and predicted tasks' saved dicts, by the dict's
# id (the entry holds the dict, so the id stays its own while the entry lives).
_SAVED_JSON = "_certflow_saved_json"


def state_json(workflow: BpmnWorkflow, state: dict[str, Any]) -> EncodedJSON:
    """``state`` (``state_to_dict(workflow)``) as JSON text, the finished tasks' part encoded
    once and reused on later saves, as their dicts are (FinishedTaskCache): most of the text
    of every save is theirs. The very text ``json.dumps(state)`` gives (compared under
    ``CERTFLOW_VERIFY_STATE``)."""
    text = EncodedJSON(_encode_workflow(workflow, state))
    if verifying() and text != json.dumps(state):
        raise AssertionError("the saved-task JSON cache changed the serialized state")
    return text


def _encode_workflow(workflow: Any, dct: dict[str, Any]) -> str:
    parts = []
    for key, value in dct.items():
        if key == "tasks":
            text = _encode_tasks(workflow, value)
        elif key == "subprocesses" and isinstance(value, dict):
            subs = workflow.subprocesses if hasattr(workflow, "subprocesses") else {}
            text = "{" + ", ".join(
                f"{json.dumps(sid)}: " + (_encode_workflow(subs[UUID(sid)], sub) if UUID(sid) in subs
                                          else json.dumps(sub))
                for sid, sub in value.items()) + "}"
        else:
            text = json.dumps(value)
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


# The states whose saved dicts may be the very dicts of an earlier save (FinishedTaskCache,
# CachedStateConverter): their text is reused while the dict is the same object.
_KEPT_TEXT = TaskState.FINISHED_MASK | TaskState.PREDICTED_MASK


def _encode_tasks(workflow: Any, tasks: dict[str, Any]) -> str:
    before: dict[int, tuple[dict[str, Any], str]] = workflow.__dict__.get(_SAVED_JSON, {})
    kept: dict[int, tuple[dict[str, Any], str]] = {}
    parts = []
    for task_id, dct in tasks.items():
        if dct["state"] & _KEPT_TEXT:
            hit = before.get(id(dct))
            if hit is None or hit[0] is not dct:
                hit = (dct, json.dumps(dct))
            kept[id(dct)] = hit
            text = hit[1]
        else:
            text = json.dumps(dct)
        parts.append(f'"{task_id}": {text}')  # a task id is a UUID's text: nothing to escape
    workflow.__dict__[_SAVED_JSON] = kept  # only what this save used: replaced dicts drop out
    return "{" + ", ".join(parts) + "}"


def _registry(cache_finished: bool = True) -> Any:
    config = dict(SPIFF_CONFIG)
    config[AsyncServiceTask] = ServiceTaskConverter
    config[BpmnWorkflow] = StateOnlyConverter
    if cache_finished:
        config[Task] = FinishedTaskCache
        config[BpmnWorkflow] = CachedStateConverter
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
    if verifying():
        plain = _PLAIN.to_dict(workflow)
        if _canonical(state) != _canonical(plain):
            raise AssertionError("the saved-task cache changed the serialized state")
    return state


def _canonical(state: dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True, default=str)


def state_from_dict(dct: dict[str, Any], spec: Any, subprocess_specs: dict[str, Any],
                    script_engine: Any = None) -> BpmnWorkflow:
    return restore_state(dct, spec, subprocess_specs, script_engine)[0]


# Each task's state and element by task id (the UUID itself: a string is made only for the
# few that an advance audits).
TaskStates = dict[UUID, tuple[int, str]]


def restore_state(dct: dict[str, Any], spec: Any, subprocess_specs: dict[str, Any],
                  script_engine: Any = None) -> tuple[BpmnWorkflow, TaskStates]:
    """The workflow a saved state describes, and its task states by id (what a walk of the
    restored tree with ``get_tasks`` would give; the advance's audit compares with them).

    Builds the same workflow as SpiffWorkflow's converters (``_plain_from_dict``) for under
    half the CPU (bench/restore.py): task dicts are turned into tasks here instead of through
    the registry's generic dispatch, each id string is parsed once, a delta task's data is
    copied from its parent as ``DeepMerge.merge({}, parent.data)`` does, without its per-key
    checks, and plain JSON data skips the typename lookups. The task states come out of the
    same loop, so a restore walks the tree once, and the finished tasks' stored dicts fill
    the save's finished-task cache. Sub-processes are restored SpiffWorkflow's way (and then
    walked); a state this does not replicate (``_Irregular``) is restored wholly that way.
    ``CERTFLOW_VERIFY_STATE=1`` (set in the tests) restores every state both ways and compares
    the two workflows attribute by attribute (``_shape``)."""
    workflow, states = _fast_from_dict(dct, spec, subprocess_specs, script_engine)
    if verifying():
        plain = _plain_from_dict(dct, spec, subprocess_specs, script_engine)
        if _shape(workflow, dct) != _shape(plain, dct):
            raise AssertionError("the fast restore built a different workflow than SpiffWorkflow's")
        if states != walked_states(plain):
            raise AssertionError("the fast restore's task states differ from a walk of the tree")
    return walk_faster(workflow), states


def walked_states(workflow: BpmnWorkflow) -> TaskStates:
    return {t.id: (t.state, t.task_spec.bpmn_id)
            for t in workflow.get_tasks() if getattr(t.task_spec, "bpmn_id", None)}


def _top_levels(dct: dict[str, Any]) -> dict[str, Any]:
    # The converters pop keys from the top level and from each subprocess; copy just those
    # levels so the caller's dict (an ORM attribute) stays intact, without a deep copy.
    dct = dict(dct)
    dct["subprocesses"] = {k: dict(v) for k, v in dct["subprocesses"].items()}
    return dct


def _plain_from_dict(dct: dict[str, Any], spec: Any, subprocess_specs: dict[str, Any],
                     script_engine: Any = None) -> BpmnWorkflow:
    """SpiffWorkflow's own restore (its registry and converters), with the spec handed in."""
    workflow: BpmnWorkflow = SERIALIZER.from_dict(_top_levels(dct), spec=spec, subprocess_specs=subprocess_specs)
    if script_engine is not None:
        workflow.script_engine = script_engine
    return workflow


_PRIMITIVE = frozenset((str, int, float, bool, type(None)))
_CONTAINERS = (dict, list, set)
_COPIED = frozenset((dict, list, set))
_UNKNOWN = SafeUUID.unknown
_new_uuid = object.__new__
_set_slot = object.__setattr__


def _uuid(text: str) -> UUID:
    """``UUID(text)`` for the canonical form ``str(uuid)`` writes, without its generic parsing."""
    if len(text) == 36 and text[8] == text[13] == text[18] == text[23] == "-" and text == text.lower():
        value = _new_uuid(UUID)
        _set_slot(value, "int", int(text.replace("-", ""), 16))
        _set_slot(value, "is_safe", _UNKNOWN)
        return value  # type: ignore[no-any-return]
    raise _Irregular(f"task id {text!r}")


def _fresh(value: Any, restore: Any) -> Any:
    """``registry.restore(value)``: a new copy of JSON containers, registered types restored."""
    kind = type(value)
    if kind in _PRIMITIVE:
        return value
    if kind is dict:
        if "typename" in value:
            return restore(value)
        return {k: v if type(v) in _PRIMITIVE else _fresh(v, restore) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PRIMITIVE else _fresh(v, restore) for v in value]
    return restore(value)


def _inherited(data: dict[str, Any]) -> dict[str, Any]:
    """``DeepMerge.merge({}, data)``: a new dict with a shallow copy of each container value."""
    out = {}
    for k, v in data.items():
        kind = type(v)
        if kind in _PRIMITIVE:
            out[k] = v
        elif kind in _COPIED:
            out[k] = v.copy()
        else:
            out[k] = copy.copy(v) if isinstance(v, _CONTAINERS) else v
    return out


def _replicates_task_converter(registry: Any) -> bool:
    """Whether the registry restores tasks with SpiffWorkflow's TaskConverter.from_dict into
    plain Tasks, the code ``_Restore.tasks`` does the work of."""
    converter = registry.convert_from_dict["Task"].args[0].__self__
    return converter.target_class is Task and type(converter).from_dict is TaskConverter.from_dict  # type: ignore[no-any-return]


class _Irregular(Exception):
    """A state the direct restore does not build (another task converter, an unknown task spec,
    an id not in ``str(uuid)`` form): it is restored SpiffWorkflow's own way instead."""


class _Restore:
    """One restore: the ids parsed so far, the task states, and whether those can be read off
    the task dicts (a whole tree of known shape) instead of walking the restored tree."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.ids: dict[str, UUID] = {}
        self.states: TaskStates = {}
        self.exact = True  # False: the states must come from a walk (see tasks())

    def uuid(self, text: str) -> UUID:
        found = self.ids.get(text)
        if found is None:
            found = self.ids[text] = _uuid(text)
        return found

    def tasks(self, dct: dict[str, Any], workflow: Any, root: str) -> dict[UUID, Task]:
        """What ``mapping_from_dict(dct, UUID, workflow=workflow)`` gives with the registry's
        TaskConverter (``TaskConverter.from_dict`` per task), built directly. Tasks are added
        in the stored order, so a task's parent (saved before it) is there when its data is
        merged, as in TaskConverter."""
        if not _replicates_task_converter(self.registry):
            raise _Irregular("another task converter")
        tasks: dict[UUID, Task] = {}
        workflow.tasks = tasks  # as Task.__init__ registers each task in it
        restore, fresh, ids, parse, states = self.registry.restore, _fresh, self.ids, self.uuid, self.states
        specs = workflow.spec.task_specs
        events = workflow.top_workflow.event_manager
        waiting = TaskState.WAITING
        new = Task.__new__
        pool = Task.thread_id_pool
        catching: dict[int, bool] = {}
        finished = TaskState.FINISHED_MASK
        # The save after this restore need not convert the finished tasks again: their dicts
        # are the stored ones, cached under the key FinishedTaskCache.to_dict computes (the
        # same six values; test_restore.py checks the save then converts only unfinished
        # tasks, and CERTFLOW_VERIFY_STATE that it still equals the plain serializer's).
        saved = workflow.__dict__.setdefault(_SAVED_TASKS, {})
        by_key: dict[str, Task] = {}
        depth: dict[str, int] = {}
        children_seen = 0
        for key, item in dct.items():
            spec = specs.get(item["task_spec"])
            if spec is None or item.get("typename") != "Task" or item["id"] != key:
                raise _Irregular(f"task {key}")
            tid = ids.get(key) or parse(key)
            parent_key = item["parent"]
            children = [ids.get(child) or parse(child) for child in item["children"]]
            task = new(Task)
            attrs = task.__dict__
            attrs["id"] = tid
            attrs["workflow"] = workflow
            attrs["_parent"] = None if parent_key is None else (ids.get(parent_key) or parse(parent_key))
            attrs["_children"] = children
            attrs["_state"] = state = item["state"]
            attrs["triggered"] = item["triggered"]
            attrs["task_spec"] = spec
            attrs["thread_id"] = pool
            attrs["data"] = {}
            internal = item["internal_data"]
            attrs["internal_data"] = {} if internal == {} else fresh(internal, restore)
            attrs["last_state_change"] = item["last_state_change"]
            tasks[tid] = task
            by_key[key] = task
            is_catching = catching.get(id(spec))
            if is_catching is None:
                is_catching = catching[id(spec)] = isinstance(spec, CatchingEvent)
            if is_catching and state & waiting:
                events.add_task(task)
            parent = None if parent_key is None else by_key.get(parent_key)
            delta = item.get("delta")
            if delta and parent is not None:
                data = _inherited(parent.data)
                updates = delta.get("updates", {})
                if updates != {}:
                    data.update(fresh(updates, restore))
                for name in delta.get("deletions", {}):
                    if name in data:
                        del data[name]
            else:
                data = fresh(item["data"], restore)
            attrs["data"] = data
            if state & finished and (parent_key is None or (parent is not None and parent._state & finished)):
                saved[tid] = ((state, attrs["last_state_change"], attrs["triggered"], tuple(children),
                               len(data), len(attrs["internal_data"])), item)
            # The states a walk from the root finds: every task, if the stored tree is whole
            # (each task listed by its parent, saved after it; the root the only one without).
            children_seen += len(children)
            if parent is None:
                depth[key] = 0
                if parent_key is not None or key != root:
                    self.exact = False
            else:
                depth[key] = level = depth[parent_key] + 1
                if level >= _DEEP or tid not in parent._children:
                    self.exact = False
            bpmn_id = getattr(spec, "bpmn_id", None)
            if bpmn_id:
                states[tid] = (state, bpmn_id)
        if children_seen != len(tasks) - 1:
            self.exact = False
        return tasks


# get_tasks stops descending at depth 1000 (TaskIterator's max_depth): deeper trees are walked.
_DEEP = 500


def _fast_from_dict(dct: dict[str, Any], spec: Any, subprocess_specs: dict[str, Any],
                    script_engine: Any) -> tuple[BpmnWorkflow, TaskStates]:
    restoring = _Restore(SERIALIZER.registry)
    try:
        workflow: BpmnWorkflow = SERIALIZER.from_dict(_top_levels(dct), spec=spec, subprocess_specs=subprocess_specs,
                                                      script_engine=script_engine, restoring=restoring)
    except _Irregular:
        workflow = _plain_from_dict(dct, spec, subprocess_specs, script_engine)
        return workflow, walked_states(workflow)
    if workflow.subprocesses:
        restoring.exact = False  # a walk's order through sub-processes is its own (BpmnTaskIterator)
    return workflow, restoring.states if restoring.exact else walked_states(workflow)


def _shape(workflow: BpmnWorkflow, source: Any = None) -> dict[str, Any]:
    """Everything a restored workflow is made of, comparable with ``==`` across two restores of
    one state: every attribute of every (sub)workflow and task, the spec objects they point to
    (by identity: both restores are given the same spec), the waiting events, and which data
    containers are shared between tasks (a delta task's data is a shallow copy of its
    parent's, so nested containers are shared; the two restores must share the same ones) or
    with the ``source`` dict they were restored from (which may be another workflow's saved
    dicts: the finished-task cache's)."""
    owners: dict[int, str] = {}
    aliases: list[tuple[str, str]] = []
    stored: set[int] = set()

    def walk(value: Any) -> None:
        if isinstance(value, (dict, list)):
            stored.add(id(value))
            for item in value.values() if isinstance(value, dict) else value:
                walk(item)

    walk(source)

    def note(value: Any, path: str) -> None:
        if isinstance(value, (dict, list, set)):
            if id(value) in stored:
                aliases.append((path, "stored"))
            first = owners.setdefault(id(value), path)
            if first != path:
                aliases.append((path, first))
                return
            items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
            for k, item in items:
                note(item, f"{path}/{k}")

    # What certflow adds to a workflow: the finished-task cache, and walk_faster's method.
    def flow(w: Any, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {"class": type(w), "spec": id(w.spec), "attrs": sorted(set(vars(w)) - {_SAVED_TASKS, "update_waiting_tasks"}),
                               "root": (w.task_tree.id, w.task_tree is w.tasks.get(w.task_tree.id))}
        for attr in ("data", "correlations", "success", "completed", "locks"):
            out[attr] = getattr(w, attr)
            note(getattr(w, attr), f"{name}.{attr}")
        last = w.last_task
        out["last_task"] = None if last is None else (last.id, last is w.tasks.get(last.id))
        rows = []
        for key, t in w.tasks.items():
            rows.append((key, type(key), type(t), list(vars(t)), t.id, type(t.id), t.workflow is w,
                         id(t.task_spec), t._parent, t._children, t._state, t.triggered, t.thread_id,
                         t.last_state_change, t.data, t.internal_data))
            note(t.data, f"{name}/{key}.data")
            note(t.internal_data, f"{name}/{key}.internal_data")
        out["tasks"] = rows
        return out

    top = flow(workflow, "top")
    top["subprocess_specs"] = {k: id(v) for k, v in workflow.subprocess_specs.items()}
    top["subprocesses"] = {
        k: (flow(sp, str(k)), sp.parent_task_id, sp.top_workflow is workflow, sp.depth,
            len(sp.completed_event.hard_subscribers or ()) + len(sp.completed_event.weak_subscribers or ()))
        for k, sp in workflow.subprocesses.items()}
    top["events"] = [(k, t.workflow.tasks.get(k) is t) for k, t in workflow.event_manager.tasks.items()]
    top["bpmn_events"] = SERIALIZER.registry.convert(workflow.bpmn_events)
    top["script_engine"] = type(workflow.script_engine)
    top["aliases"] = aliases
    return top


def last_task_data(state: dict[str, Any]) -> dict[str, Any] | None:
    """``workflow.last_task.data`` of a saved state, without restoring the workflow: a task
    saves its data as a delta on its parent's, so only the branch from the root to the last
    task is restored, the same way ``TaskConverter.from_dict`` restores each of them. None
    when the state has no last task at its top level (the caller restores the workflow)."""
    tasks = state.get("tasks") or {}
    branch: list[dict[str, Any]] = []
    task_id = state.get("last_task")
    while task_id is not None:
        dct = tasks.get(task_id)
        if dct is None or len(branch) > len(tasks):  # not in this workflow, or not a tree
            return None
        branch.append(dct)
        task_id = dct["parent"]
    if not branch:
        return None
    registry = SERIALIZER.registry
    data: dict[str, Any] | None = None
    for dct in reversed(branch):
        delta = dct.get("delta")
        if delta and data is not None:
            merged: dict[str, Any] = DeepMerge.merge({}, data)
            merged.update(registry.restore(delta.get("updates", {})))
            for key in delta.get("deletions", {}):
                merged.pop(key, None)
            data = merged
        else:
            data = registry.restore(dct["data"])
    return data


def find_task(workflow: BpmnWorkflow, task_id: str) -> Task | None:
    """The task with this id, or None when it is gone (a boundary event can remove a branch's
    tasks from the tree entirely, not just cancel them)."""
    try:
        return workflow.get_task_from_id(UUID(task_id))
    except Exception:  # TaskNotFoundException, or a malformed id
        return None


# BpmnTaskIterator's default depth limit: get_tasks() stops descending below it.
_MAX_DEPTH = 1000


def all_tasks(workflow: BpmnWorkflow) -> list[Task]:
    """``workflow.get_tasks()``: every task, sub-processes' included, in the same order.

    SpiffWorkflow's iterator pops each task off the front of a list, prepends its children,
    and runs every task through a filter that, with no arguments, lets all of them pass; an
    advance walks the whole tree once per engine run this way (about a tenth of its Python
    calls). This is the same depth-first walk on a stack, with the iterator's own depth
    bookkeeping (a branch deeper than its limit is not descended into, as there), without the
    filter. ``CERTFLOW_VERIFY_STATE=1`` (set in the tests) compares it with ``get_tasks()``."""
    subprocesses = workflow.top_workflow.subprocesses
    out: list[Task] = []
    stack = [workflow.task_tree]  # the next task is the last one
    depth = 0
    deep = _may_reach_the_depth_limit(workflow)
    while stack:
        task = stack.pop()
        out.append(task)
        children = task._children
        subprocess = subprocesses.get(task.id) if subprocesses else None  # most have none: no hashing
        if (children or subprocess is not None) and depth < _MAX_DEPTH:
            found = task.workflow.tasks.get
            stack.extend([found(child) for child in reversed(children)])
            if subprocess is not None:  # its tree comes before the task's own children
                stack.append(subprocess.task_tree)
            depth += 1
        elif deep and stack:  # a leaf: back up to the depth of the next task's parent
            depth = _leaf_depth(task, stack[-1], depth)
    if verifying():
        walked = workflow.get_tasks(max_depth=_MAX_DEPTH)
        if len(walked) != len(out) or any(a is not b for a, b in zip(walked, out)):
            raise AssertionError("all_tasks() differs from workflow.get_tasks()")
    return out


def _may_reach_the_depth_limit(workflow: Any) -> bool:
    """Whether a walk of the tree as it is may reach the iterators' depth limit: a walk goes
    one level deeper per task it descends into, so not with fewer tasks than the limit (then
    the depth need not be kept: the walk descends wherever its other conditions allow)."""
    top = workflow.top_workflow
    size = len(top.tasks)
    for subprocess in top.subprocesses.values():
        size += len(subprocess.tasks)
    return size >= _MAX_DEPTH


def _leaf_depth(task: Task, following: Task, depth: int) -> int:
    """TaskIterator's ``_handle_leaf_depth``: after a leaf, the depth of the task that follows
    (one less per step up from the leaf to that task's parent). A sibling (the most frequent
    case) keeps it, without the two look-ups of parents."""
    if following._parent == task._parent and following.workflow is task.workflow:
        return depth
    ancestor, current = following.parent, task.parent
    while current is not None and current != ancestor:
        current = current.parent
        depth -= 1
    return depth


def _walk(root: Task, state: int, bpmn: bool, deep: bool = True) -> Iterator[Task]:
    """``TaskIterator(root, state=state)``, or ``BpmnTaskIterator`` (``bpmn``: sub-processes'
    trees too), lazily and in the same order: a task's children are looked up as it is
    reached (before it is yielded, as there), and a branch is descended into only where those
    iterators do (not below a task in a predicted state when the state asked for is definite,
    nor below the depth limit). What they spend on a filter object, a list popped from its
    front and properties per task, this does on a stack; an advance walks the tree this way
    several times (each engine step, and after every task that completes). ``deep`` False:
    the caller knows the walk cannot reach the depth limit (``_may_reach_the_depth_limit``,
    and the tree does not grow while it walks), so the depth is not kept."""
    if state & TaskState.PREDICTED_MASK:
        min_state = TaskState.MAYBE
    elif state & TaskState.DEFINITE_MASK:
        min_state = TaskState.FUTURE
    else:
        min_state = TaskState.COMPLETED
    subprocesses = root.workflow.top_workflow.subprocesses if bpmn else {}
    bpmn = bpmn and bool(subprocesses)  # none: no look-up per task
    stack = [root]  # the next task is the last one
    depth = 0
    while stack:
        task = stack.pop()
        children = task._children
        subprocess = subprocesses.get(task.id) if bpmn else None
        if (children or subprocess is not None) and (task._state >= min_state or subprocess is not None) \
                and depth < _MAX_DEPTH:
            found = task.workflow.tasks.get
            stack.extend([found(child) for child in reversed(children)])
            if subprocess is not None and not (task._state >= TaskState.FINISHED_MASK
                                               and state <= TaskState.FINISHED_MASK):
                stack.append(subprocess.task_tree)  # its tree comes before the task's children
            depth += 1
        elif deep and stack:  # a leaf: back up to the depth of the next task's parent
            depth = _leaf_depth(task, stack[-1], depth)
        if task._state & state:
            yield task


def _ready(workflow: Any) -> list[Task]:
    """``workflow.get_tasks(state=TaskState.READY)``, for a workflow or a sub-process."""
    # Listed before any of them runs: the tree does not change during the walk.
    ready = list(_walk(workflow.task_tree, TaskState.READY, bpmn=True, deep=_may_reach_the_depth_limit(workflow)))
    if verifying() and ready != workflow.get_tasks(state=TaskState.READY):
        raise AssertionError("the READY walk differs from workflow.get_tasks(state=READY)")
    return ready


def do_engine_steps(workflow: BpmnWorkflow) -> None:
    """``workflow.do_engine_steps()`` (SpiffWorkflow 3.2's, step for step), with the walk
    for READY tasks done by ``_walk``: run every READY task that is not a person's, innermost
    sub-process first, until none is left; then refresh the timers."""
    while _engine_step(workflow):
        pass
    workflow.refresh_timers()


def _engine_step(workflow: BpmnWorkflow) -> bool:
    def update(wf: Any) -> int:
        count = 0
        for task in _ready(wf):
            if not task.task_spec.manual:
                task.run()
                count += 1
        return count

    active = workflow.get_active_subprocesses()
    for subprocess in sorted(active, key=lambda v: v.depth, reverse=True):
        while update(subprocess) > 0:
            pass
        if subprocess.parent_task_id is not None:
            task = workflow.get_task_from_id(subprocess.parent_task_id)
            task.task_spec._update(task)
    count = update(workflow)
    return count > 0 or len(workflow.get_active_subprocesses()) > len(active)


def _update_waiting_tasks(workflow: Any) -> None:
    """``Workflow.update_waiting_tasks``: update every WAITING task, found as it walks (an
    update may change the tree ahead of the walk, as in SpiffWorkflow's)."""
    if verifying():
        expected = list(TaskIterator(workflow.task_tree, state=TaskState.WAITING))
        if list(_walk(workflow.task_tree, TaskState.WAITING, bpmn=False)) != expected:
            raise AssertionError("the WAITING walk differs from SpiffWorkflow's TaskIterator")
    for task in _walk(workflow.task_tree, TaskState.WAITING, bpmn=False):
        task.task_spec._update(task)


def walk_faster(workflow: BpmnWorkflow) -> BpmnWorkflow:
    """Have ``workflow`` (this instance; bare SpiffWorkflow elsewhere in the process stays as
    it is) update its WAITING tasks by ``_walk``: it does after every task that completes."""
    workflow.update_waiting_tasks = MethodType(_update_waiting_tasks, workflow)
    return workflow


def is_completed(workflow: BpmnWorkflow, tasks: list[Task]) -> bool:
    """``workflow.is_completed()``, given ``tasks``: ``all_tasks(workflow)`` of the tree as it
    is now. SpiffWorkflow walks the tree from the root to its first unfinished task (past every
    finished one) on each call; an unfinished task of the workflow itself (not of a
    sub-process) in the walk at hand answers False at once. Anything else is asked of
    SpiffWorkflow, which then records the workflow as completed, as before. A walk of a
    thousand tasks or more (the iterators' depth limit may differ) is asked of it too;
    ``CERTFLOW_VERIFY_STATE=1`` (set in the tests) compares the two."""
    if workflow.completed or len(tasks) >= _MAX_DEPTH:
        return bool(workflow.is_completed())
    unfinished = TaskState.NOT_FINISHED_MASK
    if any(task._state & unfinished and task.workflow is workflow for task in tasks):
        if verifying() and workflow.is_completed():
            raise AssertionError("is_completed() found the workflow completed")
        return False
    return bool(workflow.is_completed())
