"""Service-task handlers: plain typed functions registered by the operator name a BPMN
service task names (``invoicing/create_invoice``).

A handler knows nothing of SpiffWorkflow or Celery. It takes a ``HandlerContext`` and one
pydantic input model, and returns a JSON-able dict that becomes the task's result variable.
Its side effects are keyed by ``ctx.idempotency_key`` with a unique constraint, so running it
twice for the same key has the effect of running it once (jobs are delivered at least once).

Deploy checks every operator named in a diagram against this registry, and the parameters it
passes against the handler's input model, so an unknown name fails at deploy, not at run time.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from certflow.settings import Settings

In = TypeVar("In", bound=BaseModel)



@dataclass(frozen=True)
class HandlerContext:
    session: Session
    now: datetime
    idempotency_key: str
    settings: Settings
    instance_id: str = ""
    business_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class HandlerError(Exception):
    """A failure worth retrying (a server down, a lock timeout)."""


class PermanentError(HandlerError):
    """A failure retrying cannot fix (bad input, missing customer data): an incident at once."""


@dataclass(frozen=True)
class Handler(Generic[In]):
    name: str
    input_model: type[In]
    fn: Callable[[HandlerContext, In], dict[str, Any]]
    # Parameter names the diagram may leave out (they have defaults in the input model).
    optional: frozenset[str]

    def __call__(self, ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
        try:
            data = self.input_model.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}" for e in exc.errors()
            )
            raise PermanentError(f"{self.name}: invalid input: {problems}") from exc
        return self.fn(ctx, data)


REGISTRY: dict[str, Handler[Any]] = {}


def handler(name: str) -> Callable[[Callable[[HandlerContext, In], dict[str, Any]]], Callable[[HandlerContext, In], dict[str, Any]]]:
    """Register ``fn(ctx, data: Model) -> dict`` under ``name``; the model is read from the
    function's annotation of its second parameter."""

    def register(fn: Callable[[HandlerContext, In], dict[str, Any]]) -> Callable[[HandlerContext, In], dict[str, Any]]:
        import typing

        hints = typing.get_type_hints(fn)
        params = [p for p in fn.__code__.co_varnames[: fn.__code__.co_argcount]]
        model = hints[params[1]]
        if name in REGISTRY and REGISTRY[name].fn is not fn:
            raise RuntimeError(f"handler {name!r} registered twice")
        optional = frozenset(n for n, f in model.model_fields.items() if not f.is_required())
        REGISTRY[name] = Handler(name=name, input_model=model, fn=fn, optional=optional)
        return fn

    return register


# Deploy checks: a handler may check the parameters a diagram passes it as literals (a
# template name, a product) so a typo fails at deploy with the element id, not at run time.
DeployCheck = Callable[[dict[str, Any]], list[str]]
DEPLOY_CHECKS: dict[str, DeployCheck] = {}


def deploy_check(name: str) -> Callable[[DeployCheck], DeployCheck]:
    def register(fn: DeployCheck) -> DeployCheck:
        DEPLOY_CHECKS[name] = fn
        return fn

    return register


# Start guards: checks a process runs before an instance may start (named by the start event's
# `guard` property). They return None to allow, or the refusal the person starting should read,
# saying what to do instead. They read, never write.
Guard = Callable[[Session, datetime, dict[str, Any]], "str | None"]
GUARDS: dict[str, Guard] = {}


def guard(name: str) -> Callable[[Guard], Guard]:
    def register(fn: Guard) -> Guard:
        if name in GUARDS and GUARDS[name] is not fn:
            raise RuntimeError(f"guard {name!r} registered twice")
        GUARDS[name] = fn
        return fn

    return register


def load_all() -> dict[str, Handler[Any]]:
    """Import every module of this package; each registers its handlers on import."""
    from certflow.settings import get_settings

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"handlers.{module.name}")
    for extra in filter(None, (m.strip() for m in get_settings().handler_modules.split(","))):
        importlib.import_module(extra)
    return REGISTRY


def get(name: str) -> Handler[Any]:
    load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no handler registered as {name!r}") from None
