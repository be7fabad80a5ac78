"""Escalation policies: what happens around a human task's due time, per task type.

A process folder may hold ``escalation.json`` (one place a process owner reads and edits):

```
{"defaults": {"remind_before": "2 werkdagen", "escalate_to": "coordinator",
              "on_escalation": "keep", "second_level_after": "5 werkdagen",
              "second_level_to": "office_manager", "move_to_working_day": false},
 "tasks": {"assess_1": {"remind_before": "3 werkdagen"}}}
```

Deploy validates it (file and element id in every problem) and stores each user task's resolved
policy in the definition's element metadata, so a running instance keeps the policy of its
version. A task whose version has no policy (older versions, diagrams without the file) gets
``DEFAULT``: escalation to the coordinators at the due time, the office manager later.

A policy becomes a list of steps at fixed times (``steps``): reminder to the assignee at
T−x, escalation at T, second level at T+y. The human-task row keeps how many steps are done
(``escalation_level``) and when the next is due (``next_escalation_at``); the sweep does the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from certflow.engine.errors import Problem
from certflow.i18n import Message, N_
from certflow.workdays import Calendar, Term, TermError, parse_term

FILE = "escalation.json"
KEYS = {"remind_before", "escalate_to", "on_escalation", "second_level_after", "second_level_to",
        "move_to_working_day"}
DEFAULT: dict[str, Any] = {
    "policy": "default", "remind_before": None, "escalate_to": "coordinator", "on_escalation": "keep",
    "second_level_after": "5 werkdagen", "second_level_to": "office_manager", "move_to_working_day": False,
}
KINDS = ("reminder", "escalation", "second_level")


@dataclass(frozen=True)
class Step:
    kind: str  # reminder | escalation | second_level
    at: datetime
    to_group: str | None = None


@lru_cache(maxsize=256)
def term(text: str) -> Term:
    return parse_term(text)


def of(elements: dict[str, Any] | None, element_id: str) -> dict[str, Any]:
    """The policy a task of this element follows (the version's, or the default)."""
    meta = (elements or {}).get(element_id) or {}
    return meta.get("escalation") or DEFAULT


def steps(policy: dict[str, Any], due_at: datetime, cal: Calendar) -> list[Step]:
    out = []
    if policy.get("remind_before"):
        out.append(Step("reminder", cal.before(due_at, term(policy["remind_before"]))))
    if policy.get("escalate_to"):
        out.append(Step("escalation", due_at, policy["escalate_to"]))
    if policy.get("second_level_to") and policy.get("second_level_after"):
        out.append(Step("second_level", cal.after(due_at, term(policy["second_level_after"])),
                        policy["second_level_to"]))
    return out


def next_at(policy: dict[str, Any], due_at: datetime | None, level: int, cal: Calendar) -> datetime | None:
    if due_at is None:
        return None
    planned = steps(policy, due_at, cal)
    return planned[level].at if level < len(planned) else None


def first_level(policy: dict[str, Any], due_at: datetime | None, now: datetime, cal: Calendar) -> int:
    """A new task skips a reminder that would already be late when it is created."""
    return first_step(policy, due_at, now, cal)[0]


def first_step(policy: dict[str, Any], due_at: datetime | None, now: datetime, cal: Calendar
               ) -> tuple[int, datetime | None]:
    """A new due time's ``first_level`` and that level's ``next_at``, from one plan of the
    steps (each plan counts working days on the calendar)."""
    if due_at is None:
        return 0, None
    planned = steps(policy, due_at, cal)
    level = 1 if planned and planned[0].kind == "reminder" and planned[0].at <= now else 0
    return level, planned[level].at if level < len(planned) else None


def due_at(policy: dict[str, Any], due: str, now: datetime, cal: Calendar) -> datetime:
    """A task's due time from its ``due`` term (``P14D`` or ``10 werkdagen``)."""
    return cal.deadline(now, term(due), bool(policy.get("move_to_working_day")))


# -- deploy --------------------------------------------------------------------------------------
def attach(process_id: str, sources: dict[str, str], elements: dict[str, Any]) -> list[Problem]:
    """Validate ``escalation.json`` and store each user task's resolved policy in ``elements``.
    Problems name the file and the element id."""
    user_tasks = [e for e, m in elements.items() if m.get("type") == "UserTask"]
    text = sources.get(FILE)
    if text is None:
        return []
    problems: list[tuple[str | None, str]] = []  # (element, message), all in this file
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [Problem(f"{process_id}/{FILE}", None, Message(N_("not valid JSON: %(error)s"), error=str(exc)))]
    if not isinstance(data, dict) or set(data) - {"$comment", "defaults", "tasks"}:
        return [Problem(f"{process_id}/{FILE}", None, Message(N_("expected an object with 'defaults' and/or 'tasks'")))]
    defaults = {**DEFAULT, **_checked(data.get("defaults", {}), None, problems)}
    tasks = data.get("tasks", {})
    if not isinstance(tasks, dict):
        return [Problem(f"{process_id}/{FILE}", None, Message(N_("'tasks' must map user-task ids to policies")))]
    overrides: dict[str, dict[str, Any]] = {}
    for element, override in tasks.items():
        if element not in user_tasks:
            problems.append((element, Message(N_("no user task %(task)r in %(process_id)s (user tasks: %(tasks)s)"),
                                              task=element, process_id=process_id,
                                              tasks=", ".join(sorted(user_tasks)) or Message(N_("none")))))
            continue
        overrides[element] = _checked(override, element, problems)
    for element in user_tasks:
        policy = {**defaults, **overrides.get(element, {})}
        policy["policy"] = f"{process_id}/{element}" if element in tasks else f"{process_id}/defaults"
        elements[element]["escalation"] = policy
    return [Problem(f"{process_id}/{FILE}", element, message) for element, message in problems]


def _checked(policy: Any, element: str | None, problems: list[tuple[str | None, str]]) -> dict[str, Any]:
    # "defaults" is the file's own key, so it stays as it is in every language.
    where = Message(N_("policy of %(task)s"), task=element) if element else "defaults"
    if not isinstance(policy, dict):
        problems.append((element, Message(N_("%(where)s: expected an object"), where=where)))
        return {}
    for key in sorted(set(policy) - KEYS):
        problems.append((element, Message(N_("%(where)s: unknown key %(key)r (known: %(known)s)"),
                                          where=where, key=key, known=", ".join(sorted(KEYS)))))
    for key in ("remind_before", "second_level_after"):
        if policy.get(key) is not None:
            try:
                term(str(policy[key]))
            except TermError as exc:
                problems.append((element, Message("%(where)s: %(key)s: %(reason)s", where=where, key=key,
                                                  reason=exc.args[0] if exc.args else str(exc))))
    for key in ("escalate_to", "second_level_to"):
        if policy.get(key) is not None and (not isinstance(policy[key], str) or not policy[key].strip()):
            problems.append((element, Message(N_("%(where)s: %(key)s must name a group"), where=where, key=key)))
    action = policy.get("on_escalation", "keep")
    if not isinstance(action, str) or not (action in ("keep", "return_to_group")
                                           or (action.startswith("reassign:") and len(action) > 9)):
        problems.append((element, Message(N_("%(where)s: on_escalation must be keep, return_to_group "
                                             "or reassign:<username>, not %(action)r"), where=where, action=action)))
    if not isinstance(policy.get("move_to_working_day", False), bool):
        problems.append((element, Message(N_("%(where)s: move_to_working_day must be true or false"),
                                          where=where)))
    return {k: v for k, v in policy.items() if k in KEYS}
