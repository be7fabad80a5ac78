"""Who may hold a task whose assignee the diagram names.

A user task with an ``assignee`` property is *personal*: the diagram chose the person (the
candidate's own dossier, one assessor's verdict, the answer to a question). Such a task never
falls back to its lane's group: unclaiming it is refused, to its holder and to staff alike
(staff reassign it instead), so no other member of the group can see, claim or complete it.

Reassigning a personal task is held to the rules of its first assignment:

* a task the diagram gave to the instance's subject (the candidate) stays the subject's: a
  candidate's dossier never goes to someone else;
* a task whose element names an ``assignment_rule`` (a conflict rule in the handler registry,
  e.g. ``recertification/assessors``) is checked with that rule: the new person together with
  whoever holds the element's siblings under the same rule (the other assessor), against the
  subject. It is the rule the process itself applied when the people were first chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.engine import queue
from certflow.engine.errors import Conflict, InvalidInput
from certflow.engine.spiff import find_task
from certflow.store.models import HumanTask, Instance
from certflow.i18n import Message, N_, joined

if TYPE_CHECKING:
    from certflow.engine.facade import Actor
    from certflow.engine.runtime import LoadedDefinition, Runtime

log = logging.getLogger(__name__)
Evaluate = Callable[[str], Any]


def is_personal(meta: dict[str, Any]) -> bool:
    return bool(meta.get("assignee"))


def personal(definition: LoadedDefinition, entry: HumanTask) -> bool:
    """Whether the diagram names this task's person (so it has no Release, no delegation)."""
    return is_personal(definition.elements.get(entry.element_id) or {})


def unclaim(runtime: Runtime, session: Session, entry: HumanTask, actor: Actor,
            now: datetime) -> None:
    holder = entry.assignee
    queue.unclaim(session, entry, actor, now)  # who may release it at all
    if is_personal(_meta(runtime, session, entry)):
        raise Conflict(Message(N_("task %(task)s was given to %(who)s by the process and cannot be "
                                  "handed back to the group; staff may reassign it"), task=entry.id, who=holder))


def assign(runtime: Runtime, session: Session, entry: HumanTask, actor: Actor, assignee: str,
           now: datetime) -> None:
    """Staff only and group members only (the queue's rules), then the first assignment's."""
    queue.assign(session, entry, actor, assignee, now)
    may_hold(runtime, session, entry, assignee)


def may_hold(runtime: Runtime, session: Session, entry: HumanTask, assignee: str) -> None:
    """InvalidInput unless ``assignee`` may hold ``entry`` by its first assignment's rules (a
    task that is not personal: anyone in its group). Every way a task changes hands by
    someone else's doing checks this: assigning, delegating, an escalation's reassignment or
    take-over."""
    if not is_personal(_meta(runtime, session, entry)):
        return
    instance = _instance(session, entry)  # the whole row (its state) only for a named person
    definition = runtime.definition(session, instance.definition_id)
    task = find_task(runtime.restore(instance, definition), entry.id)

    def evaluate(expression: str) -> Any:
        try:
            return runtime.evaluate(task, expression) if task is not None else None
        except Exception:  # a sibling's variable this branch never set: nobody holds it yet
            log.debug("assignee %r not evaluable in task %s", expression, entry.id)
            return None

    problems = _problems(runtime, session, definition.elements, entry, instance.subject,
                         assignee, evaluate)
    if problems:
        raise InvalidInput(Message(N_("%(user)s may not hold task %(task)s: %(problems)s"), user=assignee,
                                   task=entry.id, problems=joined(problems)),
                           field="assignee", problems=problems)


def _problems(runtime: Runtime, session: Session, elements: dict[str, Any], entry: HumanTask,
              subject: str | None, proposed: str, evaluate: Evaluate) -> list[str]:
    meta = elements.get(entry.element_id, {})
    problems: list[str] = []
    if subject and _text(evaluate(meta["assignee"])) == subject and proposed != subject:
        problems.append(Message(N_("this task is %(owner)s's own; it cannot be given to %(user)s"),
                                owner=subject, user=proposed))
    rule = meta.get("assignment_rule")
    if rule:
        others = _holders(session, elements, entry, rule, evaluate)
        problems += runtime.registry.conflict_rules[rule](session, subject or "",
                                                          [proposed, *others])
    return problems


def _holders(session: Session, elements: dict[str, Any], entry: HumanTask, rule: str,
             evaluate: Evaluate) -> list[str]:
    """Who holds the other tasks under ``rule``: an open task's assignee where there is one
    (it may have been reassigned), else the person the diagram names for that task."""
    siblings = [eid for eid, m in elements.items() if eid != entry.element_id
                and m.get("assignment_rule") == rule and m.get("assignee")]
    if not siblings:
        return []
    held = dict(session.execute(select(HumanTask.element_id, HumanTask.assignee).where(
        HumanTask.instance_id == entry.instance_id, HumanTask.element_id.in_(siblings)
    )).tuples().all())
    holders = [held.get(eid) or _text(evaluate(elements[eid]["assignee"])) for eid in siblings]
    return [h for h in holders if h]


def _instance(session: Session, entry: HumanTask) -> Instance:
    instance = session.get(Instance, entry.instance_id)
    assert instance is not None  # the task row cascades with its instance
    return instance


def _meta(runtime: Runtime, session: Session, entry: HumanTask) -> dict[str, Any]:
    """The task's element in the diagram of the version its instance runs (read by id: not
    the instance's row, whose state is most of its bytes)."""
    elements = runtime.definition_of(session, entry.instance_id).elements
    return dict(elements.get(entry.element_id) or {})


def _text(value: Any) -> str | None:
    return str(value) if value else None
