"""Who sees a case's personal data: one rule for the engine (task views, instance data,
history, group queues) and the services (case documents), which do not import each other."""

from __future__ import annotations

from typing import Protocol

# The staff who work with the people, and so see any case's personal data, any task with its
# case data and any group's queue. Process owners and certifiers do not, by that role alone:
# they see the cases in the monitor without their data, and the tasks of their own groups.
CASE_DATA_ROLES = ("office", "coordinator", "office_manager", "admin")


class Asking(Protocol):
    @property
    def is_staff(self) -> bool: ...

    @property
    def groups(self) -> tuple[str, ...]: ...


def sees_case_data(actor: Asking) -> bool:
    """Staff in a ``CASE_DATA_ROLES`` role, or the system itself (staff without any group: the
    command line's and the deploy's actor)."""
    return actor.is_staff and (not actor.groups or any(g in CASE_DATA_ROLES for g in actor.groups))
