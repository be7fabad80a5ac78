"""Who is asking: the two facts a service's read rules need (the engine's ``Actor`` has them).

A protocol rather than the engine's class, so services stay below the engine: web and CLI
pass the ``Actor`` the facade authenticated.
"""

from __future__ import annotations

from typing import Protocol

from certflow.errors import Forbidden
from certflow.i18n import Message, N_


class Viewer(Protocol):
    @property
    def username(self) -> str: ...

    @property
    def is_staff(self) -> bool: ...


def require_staff(viewer: Viewer, what: str) -> None:
    if not viewer.is_staff:
        raise Forbidden(Message(N_("only staff may %(what)s"), what=what))


class Member(Viewer, Protocol):
    """A viewer whose groups matter too (what is shared with a group, work on a group's case)."""

    @property
    def groups(self) -> tuple[str, ...]: ...
