"""What the runtime needs to know about a diagram element, read once at deploy time."""

from __future__ import annotations

import re
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.specs.defaults import ReceiveTask, UserTask

from certflow.engine.spiff import AsyncServiceTask


def properties(task_spec: Any) -> dict[str, str]:
    extensions = getattr(task_spec, "extensions", None) or {}
    return dict(extensions.get("properties", {}))


def valid_priority(value: str | None) -> bool:
    """A whole number in ASCII digits: ``"²".isdigit()`` is true, and int() refuses it."""
    return value is None or re.fullmatch(r"-?[0-9]{1,9}", value.strip()) is not None


def describe(task_spec: Any) -> dict[str, Any]:
    props = properties(task_spec)
    meta: dict[str, Any] = {
        "type": type(task_spec).__name__,
        "name": task_spec.bpmn_name or task_spec.bpmn_id,
        "lane": getattr(task_spec, "lane", None),
    }
    if isinstance(task_spec, UserTask):
        meta.update(form=props.get("form"), assignee=props.get("assignee"),
                    due=props.get("due"),
                    # Deploy refuses a priority that is no whole number (valid_priority).
                    priority=int(props["priority"]) if props.get("priority") and
                    valid_priority(props["priority"]) else 50)
        if props.get("assignment_rule"):  # see certflow.engine.assignment
            meta["assignment_rule"] = props["assignment_rule"]
        if props.get("name_en", "").strip():  # the task's title on English pages
            meta["name_en"] = props["name_en"].strip()
    if isinstance(task_spec, AsyncServiceTask):
        meta.update(operator=task_spec.operation_name, result_variable=task_spec.result_variable)
    definition = getattr(task_spec, "event_definition", None)
    if isinstance(definition, MessageEventDefinition) or isinstance(task_spec, ReceiveTask):
        meta.update(message=getattr(definition, "name", None), correlation=props.get("correlation"))
    for key in ("guard", "subject", "starters"):
        if props.get(key):
            meta[key] = props[key]
    if type(task_spec).__name__ == "StartEvent" and props.get("form"):
        meta["form"] = props["form"]
    if isinstance(definition, TimerEventDefinition):
        meta.update(timer=definition.expression, interrupting=getattr(task_spec, "cancel_activity", None))
    return meta
