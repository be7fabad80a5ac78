"""The contract between the engine and service-task handlers: the context a handler runs in,
the two kinds of failure, and the registry the engine is given.

The engine never imports ``handlers/``. It is handed a ``HandlerRegistry`` (the composition
root, ``certflow.bootstrap``, passes ``handlers.load_all()``) and asks it at deploy whether an
operator, a start guard or a parameter is known, and at run time for the handler of a job.
Handlers register into a registry by exact operator name (``invoicing/create_invoice``), like
Celery's ``name=`` or Temporal's ``activity.defn(name=)``.

A handler takes a ``HandlerContext`` and one pydantic input model and returns a JSON-able dict.
Its side effects are keyed by ``ctx.idempotency_key`` (jobs are delivered at least once).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from certflow.settings import Settings

In = TypeVar("In", bound=BaseModel)


class HandlerError(Exception):
    """A failure worth retrying (a server down, a lock timeout)."""


class PermanentError(HandlerError):
    """A failure retrying cannot fix (bad input, missing customer data): an incident at once."""


class Emit(Protocol):
    """Queue a message for routing after commit (a handler's fan-out); False when a message
    with this idempotency key was queued before. The engine provides it in the context."""

    def __call__(self, name: str, payload: dict[str, Any], *,
                 idempotency_key: str | None = None) -> bool: ...


def _cannot_emit(name: str, payload: dict[str, Any], *, idempotency_key: str | None = None) -> bool:
    raise PermanentError(f"this context cannot emit messages (tried {name!r}); "
                         "build it with Engine.handler_context")


class EmitMany(Protocol):
    """Queue many messages of one name at once, each under its idempotency key (keys queued
    before are skipped); returns how many were queued now. A fan-out's bulk path."""

    def __call__(self, name: str, keyed: list[tuple[str, dict[str, Any]]]) -> int: ...


def _cannot_emit_many(name: str, keyed: list[tuple[str, dict[str, Any]]]) -> int:
    raise PermanentError(f"this context cannot emit messages (tried {name!r}); "
                         "build it with Engine.handler_context")


@dataclass(frozen=True)
class HandlerContext:
    session: Session
    now: datetime
    idempotency_key: str
    settings: Settings
    instance_id: str = ""
    business_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Messages go through the engine's outbox; handlers never import the engine for it.
    emit: Emit = _cannot_emit
    emit_many: EmitMany = _cannot_emit_many


HandlerFn = Callable[[HandlerContext, Any], dict[str, Any]]
Effects = Literal["database", "outside", "outbox"]


@dataclass(frozen=True)
class Handler(Generic[In]):
    name: str
    input_model: type[In]
    fn: Callable[[HandlerContext, In], dict[str, Any]]
    # Parameter names the diagram may leave out (they have defaults in the input model).
    optional: frozenset[str]
    # Declared at registration: True when every effect is a write to certflow's own database
    # (invoice numbers, register entries, certificates). Such a handler runs inside the
    # advance that completes its task (exactly once by construction: one commit for both);
    # one with outside effects (SMTP, anything remote) only runs for its own job (in that job's
    # advance, keyed by the job), never for a task some other advance happens to reach.
    in_transaction: bool = False
    # Declared at registration (``effects="outbox"``): an outside effect the process does not
    # wait for, as a notification e-mail. The advance that reaches its task queues the job in
    # the transactional outbox and completes the task at once (its result says the job is
    # queued); the job then runs on a worker without advancing the instance again: retried
    # with backoff, an incident on the instance when it fails for good (certflow.engine.outbox).
    detached: bool = False
    # What it does, in a process owner's words: English, marked with ``N_`` where it is
    # registered; the studio shows it in the owner's language (the catalogue's translation).
    summary: str = ""

    def __call__(self, ctx: HandlerContext, params: dict[str, Any]) -> dict[str, Any]:
        try:
            data = self.input_model.model_validate(params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise PermanentError(f"{self.name}: invalid input: {problems}") from exc
        return self.fn(ctx, data)


# A check on the literal parameters a diagram passes one operator (a template name, a product),
# so a typo fails at deploy with the element id, not at run time.
DeployCheck = Callable[[dict[str, Any]], list[str]]
# A check on what all processes share (fee tables, email templates), given processes/.
SharedCheck = Callable[[Path], list[str]]
# A start guard: None to allow, or the refusal the person starting reads (what to do instead),
# as a certflow.i18n.Message so a page can show it in the reader's language.
# Guards read, never write.
Guard = Callable[[Session, datetime, dict[str, Any]], "str | None"]
# Why each of these people may not hold a task about ``subject`` (empty when all may).
ConflictRule = Callable[[Session, str, list[str]], list[str]]

F = TypeVar("F")


class HandlerRegistry:
    """Operators, deploy checks, shared checks, start guards and conflict rules, by name."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler[Any]] = {}
        self.deploy_checks: dict[str, DeployCheck] = {}
        self.shared_checks: dict[str, SharedCheck] = {}
        self.guards: dict[str, Guard] = {}
        self.conflict_rules: dict[str, ConflictRule] = {}
        # What a handler's parameter means, by its name (``holder`` is the same in every
        # handler), for process owners: English, marked with ``N_``, shown translated.
        self.parameter_help: dict[str, str] = {}

    # -- registering -----------------------------------------------------------------------
    def handler(self, name: str, effects: Effects = "outside", summary: str = ""
                ) -> Callable[[Callable[[HandlerContext, In], dict[str, Any]]],
                              Callable[[HandlerContext, In], dict[str, Any]]]:
        """Register ``fn(ctx, data: Model) -> dict`` under ``name``; the model is read from the
        annotation of its second parameter. ``effects="database"`` declares that it only
        writes certflow's own database (see ``Handler.in_transaction``); ``effects="outbox"``
        an outside effect the process does not wait for (see ``Handler.detached``).
        ``summary``: see ``Handler.summary``; its parameters are described in
        ``parameter_help`` (by name, shared by all handlers) or by their fields' descriptions."""
        if effects not in ("database", "outside", "outbox"):
            raise ValueError(f"handler {name!r}: effects must be 'database', 'outside' or 'outbox', "
                             f"not {effects!r}")

        def register(fn: Callable[[HandlerContext, In], dict[str, Any]]
                     ) -> Callable[[HandlerContext, In], dict[str, Any]]:
            hints = typing.get_type_hints(fn)
            model = hints[fn.__code__.co_varnames[1]]
            if name in self.handlers and self.handlers[name].fn is not fn:
                raise RuntimeError(f"handler {name!r} registered twice")
            optional = frozenset(n for n, f in model.model_fields.items() if not f.is_required())
            self.handlers[name] = Handler(name=name, input_model=model, fn=fn, optional=optional,
                                          in_transaction=effects == "database", detached=effects == "outbox",
                                          summary=summary)
            return fn

        return register

    def deploy_check(self, name: str) -> Callable[[DeployCheck], DeployCheck]:
        return self._into(self.deploy_checks, name, "deploy check")

    def shared_check(self, name: str) -> Callable[[SharedCheck], SharedCheck]:
        """``name`` is what a problem it reports is attributed to (``shared``, a folder)."""
        return self._into(self.shared_checks, name, "shared check")

    def guard(self, name: str) -> Callable[[Guard], Guard]:
        return self._into(self.guards, name, "guard")

    def conflict_rule(self, name: str) -> Callable[[ConflictRule], ConflictRule]:
        return self._into(self.conflict_rules, name, "conflict rule")

    @staticmethod
    def _into(table: dict[str, F], name: str, what: str) -> Callable[[F], F]:
        def register(fn: F) -> F:
            if name in table and table[name] is not fn:
                raise RuntimeError(f"{what} {name!r} registered twice")
            table[name] = fn
            return fn

        return register

    # -- asking ----------------------------------------------------------------------------
    def get(self, name: str) -> Handler[Any]:
        try:
            return self.handlers[name]
        except KeyError:
            raise KeyError(f"no handler registered as {name!r}") from None

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return name in self.handlers

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.handlers))

    def replace(self, name: str, fn: HandlerFn) -> None:
        """Swap the function behind an operator for a fake (tests, benchmarks), keeping its
        input model so deploy checks and validation stay the real ones."""
        real = self.get(name)
        self.handlers[name] = Handler(name, real.input_model, fn, real.optional, real.in_transaction,
                                      real.detached)
