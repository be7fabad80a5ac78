"""The ids a log line carries (request, instance, task, job), kept in a context variable.

A web request opens a context with its request id; the advance and the job a worker runs add
theirs. Context variables follow FastAPI's thread pool and stay apart between threads, so two
requests never see each other's ids. Binding costs one dict copy: cheap enough for the hot
path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

FIELDS = ("request_id", "instance_id", "task_id", "job_id", "handler")

# None outside any ``log_context``: then ``bind`` does nothing, so direct calls (tests, the CLI)
# never leave ids behind for whatever runs next on the thread.
_current: ContextVar[dict[str, Any] | None] = ContextVar("certflow_log_context", default=None)


def current() -> dict[str, Any]:
    return _current.get() or {}


def request_id() -> str | None:
    value = current().get("request_id")
    return str(value) if value else None


def new_request_id() -> str:
    return uuid.uuid4().hex


def bind(**fields: Any) -> None:
    """Add ids to the current context until the enclosing ``log_context`` ends."""
    ctx = _current.get()
    if ctx is not None:
        _current.set({**ctx, **{k: v for k, v in fields.items() if v is not None}})


@contextmanager
def log_context(**fields: Any) -> Iterator[dict[str, Any]]:
    """Ids for the duration of a block; whatever is bound inside is dropped at its end."""
    token = _current.set({**current(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield current()
    finally:
        _current.reset(token)
