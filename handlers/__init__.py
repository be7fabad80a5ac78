"""Service-task handlers: thin, typed adapters registered by the operator name a BPMN service
task names (``invoicing/create_invoice``). Each takes a ``HandlerContext`` and one pydantic
input model, calls an application service (``certflow.services``) and returns a JSON-able dict
that becomes the task's result variable.

Handlers know nothing of SpiffWorkflow, Celery or the engine: the registry they register into
(``REGISTRY``) is handed to the engine by the composition root (``certflow.bootstrap``), and
deploy checks every operator, parameter and start guard a diagram names against it.
"""

from __future__ import annotations

import importlib
import pkgutil

from certflow.registry import (
    DeployCheck,
    Guard,
    Handler,
    HandlerContext,
    HandlerError,
    HandlerRegistry,
    PermanentError,
)

__all__ = ["REGISTRY", "DeployCheck", "Guard", "Handler", "HandlerContext", "HandlerError",
           "PermanentError", "deploy_check", "get", "guard", "handler", "load_all"]

# The registry every module of this package registers into when imported.
REGISTRY = HandlerRegistry()
handler = REGISTRY.handler
deploy_check = REGISTRY.deploy_check
shared_check = REGISTRY.shared_check
guard = REGISTRY.guard
conflict_rule = REGISTRY.conflict_rule


def load_all() -> HandlerRegistry:
    """Import every module of this package (and ``settings.handler_modules``); each registers
    its handlers on import. Returns the filled registry."""
    from certflow.settings import get_settings

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"handlers.{module.name}")
    for extra in filter(None, (m.strip() for m in get_settings().handler_modules.split(","))):
        importlib.import_module(extra)
    return REGISTRY


def get(name: str) -> Handler:  # type: ignore[type-arg]
    return load_all().get(name)
