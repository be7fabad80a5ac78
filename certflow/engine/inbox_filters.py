"""The inbox's filters: what a clerk narrows the queue to, and how that becomes SQL.

A filter is plain data (it is saved per user and shared per group, see
certflow.services.saved_filters), so its windows are relative ("due within 7 days"), not dates.
The scope picks which of the queue's index-served sources the inbox reads; every other field
is a condition on each of them (certflow.engine.inbox): the candidate filter an indexed
sub-select on ``instances.subject``, the task filter an equality on the element id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from certflow.engine.errors import InvalidInput
from certflow.engine.filter_parsing import parse_filter
from certflow.engine.inbox import InboxFilter as Narrowing
from certflow.i18n import Message, N_

SCOPES = ("all", "mine", "unassigned")
MAX_DUE_WINDOW_DAYS = 3660


@dataclass(frozen=True)
class InboxFilter:
    """Empty fields mean "any". ``scope``: all = mine plus my groups' unassigned tasks; mine =
    assigned to me; unassigned = nobody's yet."""

    process_id: str | None = None
    element_id: str | None = None
    group: str | None = None
    scope: str = "all"
    overdue: bool | None = None
    due_within_days: int | None = None
    candidate: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise InvalidInput(Message(N_("scope must be one of %(scopes)s"), scopes=", ".join(SCOPES)), field="scope")
        days = self.due_within_days
        if days is not None and not 0 <= days <= MAX_DUE_WINDOW_DAYS:
            raise InvalidInput(Message(N_("due window must be 0 to %(n)s days"), n=MAX_DUE_WINDOW_DAYS),
                               field="due_within_days")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InboxFilter":
        """From saved JSON or a query string: unknown keys are ignored, blanks mean "any"."""
        return parse_filter(cls, data, flags=("overdue",), numbers={
            "due_within_days": Message(N_("due window must be a whole number of days"))})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "") and not (k == "scope" and v == "all")}

    def is_empty(self) -> bool:
        return not self.to_dict()


def narrowing(flt: InboxFilter, process_id: str | None, overdue: bool | None, now: datetime) -> Narrowing:
    """The filter as the queue's inbox query takes it (``process_id`` and ``overdue`` as the
    caller resolved them). The scope is not here: it picks the query's sources
    (certflow.engine.queue.sources)."""
    due_before = None if flt.due_within_days is None else now + timedelta(days=flt.due_within_days)
    return Narrowing(process_id=process_id, overdue=overdue, element_id=flt.element_id or None,
                     due_before=due_before, candidate=flt.candidate or None)
