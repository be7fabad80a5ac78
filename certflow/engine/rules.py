"""The rules the facade applies before it moves anything: who may start or see what, what
start data and form data must look like, and which definition a name refers to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session
from SpiffWorkflow.util.task import TaskState

from certflow.clock import CLOCK, OFFSET_COLUMN
from certflow.engine.errors import Forbidden, InvalidInput, NotFound
from certflow.engine.sandbox_bounds import DataLimitExceeded, NotData, check_data
from certflow.registry import HandlerRegistry
from certflow.store.models import Definition, HumanTask, Instance
from certflow.i18n import Message, N_

if TYPE_CHECKING:
    from certflow.engine.facade import Actor

SCHEDULE = "schedule"


def start_event(elements: dict[str, Any]) -> dict[str, Any]:
    return next((m for m in elements.values() if m.get("type") == "StartEvent"), {})


def may_start(elements: dict[str, Any], actor: "Actor", process_id: str) -> None:
    """Staff start anything; others only what the start event opens to one of their groups."""
    if actor.is_staff:
        return
    allowed = {g.strip() for g in str(start_event(elements).get("starters", "")).split(",") if g.strip()}
    if not allowed & set(actor.groups):
        raise Forbidden(Message(N_("you may not start %(process)s (it is open to: %(groups)s)"), process=process_id,
                                groups=", ".join(sorted(allowed))) if allowed else
                        Message(N_("you may not start %(process)s (staff only)"), process=process_id))


def subject_variable(elements: dict[str, Any]) -> str:
    return str(start_event(elements).get("subject") or "candidate")


def subject(elements: dict[str, Any], data: dict[str, Any], message: Any) -> str | None:
    payload = message[1] if message else {}
    value = data.get(subject_variable(elements)) or payload.get(subject_variable(elements)) or payload.get("holder")
    return str(value) if value else None


def check_start_form(definition: Any, data: dict[str, Any]) -> None:
    """A start event may name a form: start data must satisfy it, so nobody can preset the
    variables a process computes itself (``additionalProperties: false``)."""
    form = start_event(definition.elements).get("form")
    if form:
        validate_form(definition.forms[form], data, form)


def check_guards(session: Session, registry: HandlerRegistry, elements: dict[str, Any], now: Any,
                 data: dict[str, Any]) -> None:
    for meta in elements.values():
        name = meta.get("guard") if meta.get("type") == "StartEvent" else None
        if name:
            refusal = registry.guards[name](session, now, data)
            if refusal:
                raise InvalidInput(refusal, guard=name)


def staff_only(actor: "Actor", what: str) -> None:
    if not actor.is_staff:
        raise Forbidden(Message(N_("only staff may %(what)s"), what=what))


MAX_MESSAGE_PAYLOAD = 100_000  # characters as JSON: a message carries references, not documents


def bounded(value: Any, field: str, limit: int | None = None) -> None:
    """Input that becomes task data (start data, form data, a message payload) is plain data of
    bounded size and depth, like what a script may leave behind; otherwise ``InvalidInput``
    naming the field, before anything changes."""
    try:
        check_data(value, field, *(() if limit is None else (limit,)))
    except (DataLimitExceeded, NotData) as exc:
        raise InvalidInput(str(exc), field=field) from None


MAX_VERSION = 2**31 - 1  # the column is a 32-bit integer: a bigger number cannot be a version


def definition(session: Session, process_id: str, version: int | None) -> Definition:
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise NotFound(Message(N_("no deployed process '%(process)s' version %(version)s"), process=process_id,
                                 version=version))
    query = select(Definition).where(Definition.process_id == process_id)
    query = (query.where(Definition.version == version) if version is not None
             else query.order_by(Definition.version.desc()).limit(1))
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise (NotFound(Message(N_("no deployed process '%(process)s'"), process=process_id)) if version is None
               else NotFound(Message(N_("no deployed process '%(process)s' version %(version)s"),
                                     process=process_id, version=version)))
    return row


_LATEST_ID = (select(Definition.id).where(Definition.process_id == bindparam("process_id"))
              .order_by(Definition.version.desc()).limit(1))
# The same, reading the shared clock's offset in the same statement (a start's first read).
_LATEST_ID_CLOCK = _LATEST_ID.add_columns(OFFSET_COLUMN)


_NEWEST = (select(Definition.process_id, func.max(Definition.version).label("version"))
           .group_by(Definition.process_id).subquery())
# Each process's latest deployed version, by process id: (definition id, process id).
LATEST_IDS = (select(Definition.id, Definition.process_id)
              .join(_NEWEST, and_(Definition.process_id == _NEWEST.c.process_id,
                                  Definition.version == _NEWEST.c.version))
              .order_by(Definition.process_id))
ELEMENTS_OF = (select(Definition.id, Definition.elements)
               .where(Definition.id.in_(bindparam("ids", expanding=True))))


def latest_id(session: Session, process_id: str, read_clock: bool = False) -> int:
    """The id of a process's latest deployed version (the runtime caches the rest by id,
    so starting an instance does not read the version's whole row). ``read_clock``: refresh
    the controllable clock from this statement, so the unit of work needs no read of its own."""
    row = session.connection().execute(_LATEST_ID_CLOCK if read_clock else _LATEST_ID,
                                       {"process_id": process_id}).first()
    if row is None:  # the same refusal as ``definition``'s, in the reader's language
        raise NotFound(Message(N_("no deployed process '%(process)s'"), process=process_id))
    if read_clock:
        CLOCK.refreshed(row[1])
    return int(row[0])


def own_case(session: Session, actor: "Actor", instance_id: str) -> bool:
    """Whether the actor started the instance or is its subject."""
    row = session.execute(select(Instance.started_by, Instance.subject).where(Instance.id == instance_id)).first()
    return row is not None and actor.username in tuple(row)


def may_see(session: Session, actor: "Actor", instance: Instance) -> None:
    if actor.is_staff or actor.username in (instance.started_by, instance.subject):
        return
    if session.scalar(select(HumanTask.id).where(HumanTask.instance_id == instance.id, HumanTask.assignee == actor.username)):
        return
    raise Forbidden(Message(N_("you may not see instance %(instance)s"), instance=instance.id))


def current_data(workflow: Any) -> dict[str, Any]:
    if workflow.is_completed() and workflow.last_task is not None:
        return dict(workflow.last_task.data)
    tasks = workflow.get_tasks(state=TaskState.READY | TaskState.STARTED | TaskState.WAITING)
    merged: dict[str, Any] = {}
    for task in tasks:
        merged.update(task.data)
    return merged or dict(workflow.data)


# Validators by schema object: the forms of a deployed version are immutable and the runtime
# keeps one dict per form, so each is built once (a validator costs more than a validation).
_VALIDATORS: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}
# The schema of a task without a form: one object, so its validator is cached once.
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    cached = _VALIDATORS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    if len(_VALIDATORS) >= 512:
        _VALIDATORS.clear()
    # Formats are checked (a "date" of 2026-02-30 is refused), not only noted as JSON Schema does.
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    _VALIDATORS[id(schema)] = (schema, validator)  # the schema is kept: its id stays its own
    return validator


def validate_form(schema: dict[str, Any], data: dict[str, Any], form: str | None) -> None:
    errors = sorted(_validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        fields = {("/".join(str(p) for p in e.path) or "(form)"): e.message for e in errors}
        raise InvalidInput(Message(N_("form %(form)s rejected: %(problems)s"), form=form,
                                   problems="; ".join(f"{k}: {v}" for k, v in fields.items())), fields=fields)
