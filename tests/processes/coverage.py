"""Branch coverage computed from the diagrams themselves.

Required: every outgoing flow of every exclusive, inclusive or event-based gateway, and every
boundary event, of every process in processes/. Walked: read from the persisted task trees of
the instances each process test left behind (a completed task whose parent is the gateway is a
flow taken; a completed boundary event has fired).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from SpiffWorkflow.bpmn.specs.defaults import BoundaryEvent, EventBasedGateway, ExclusiveGateway, InclusiveGateway
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from certflow.engine.deploy import discover, parse_folder
from certflow.engine.facade import Engine
from certflow.engine.spiff import spec_from_dict
from certflow.store.db import session_scope
from certflow.store.models import Instance

GATEWAYS = (ExclusiveGateway, InclusiveGateway, EventBasedGateway)
WALKED: dict[str, set[str]] = defaultdict(set)


def _label(name: str) -> str:
    return name.removesuffix(".BoundaryEventSplit")


def required(processes_dir: Path) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = {}
    for folder in discover(processes_dir):
        bundle = parse_folder(folder)
        spec, subs = spec_from_dict(bundle.spec)
        items: set[str] = set()
        for s in [spec, *subs.values()]:
            for task_spec in s.task_specs.values():
                if isinstance(task_spec, GATEWAYS) and len(task_spec.outputs) > 1:
                    items |= {f"{task_spec.name} -> {_label(out.name)}" for out in task_spec.outputs}
                if isinstance(task_spec, BoundaryEvent):
                    items.add(f"boundary {task_spec.name}")
        needed[bundle.process_id] = items
    return needed


def record(engine: Engine) -> None:
    """Add what the instances in the current database walked."""
    with session_scope() as session:
        instances = session.scalars(select(Instance)).all()
        for instance in instances:
            workflow = engine.restore(instance, engine.definition(session, instance.definition_id))
            walked = WALKED[instance.process_id]
            # Walk the whole tree: a state filter stops at a task that is still waiting.
            for task in (t for t in workflow.get_tasks() if t.state == TaskState.COMPLETED):
                if isinstance(task.task_spec, BoundaryEvent):
                    walked.add(f"boundary {task.task_spec.name}")
                parent = task.parent
                if parent is not None and isinstance(parent.task_spec, GATEWAYS):
                    walked.add(f"{parent.task_spec.name} -> {_label(task.task_spec.name)}")


def report(needed: dict[str, set[str]]) -> tuple[str, dict[str, set[str]]]:
    lines, missing = ["process                          walked/required  coverage"], {}
    for process_id, items in sorted(needed.items()):
        done = items & WALKED.get(process_id, set())
        pct = 100.0 * len(done) / len(items) if items else 100.0
        lines.append(f"{process_id:<32} {len(done):>3}/{len(items):<12} {pct:6.1f}%")
        if items - done:
            missing[process_id] = items - done
    return "\n".join(lines), missing


# -- across processes (``make test`` runs the suite in several: tests/conftest.py) -----------
def save(path: Path, check: bool) -> None:
    """What this process walked, for the run's controller; ``check``: the run selected the
    coverage test (so the run covers the process tier and the controller checks it)."""
    path.write_text(json.dumps({"check": check, "walked": {k: sorted(v) for k, v in WALKED.items()}}))


def merge(paths: list[Path]) -> bool:
    """Add what other processes walked; whether any of them asks for the check."""
    check = False
    for path in paths:
        saved = json.loads(path.read_text())
        check = check or saved["check"]
        for process_id, items in saved["walked"].items():
            WALKED[process_id].update(items)
    return check
