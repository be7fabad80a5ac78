"""The inbox's filters: what a clerk narrows the queue to, and how that becomes SQL.

A filter is plain data (it is saved per user and shared per group, see
certflow.services.saved_filters), so its windows are relative ("due within 7 days"), not dates.
Every condition narrows the query the queue already runs on its (group, due) and (assignee,
due) indexes; none of them needs a scan of its own: the candidate filter is an indexed
sub-select on ``instances.subject``, the task filter an equality on the element id.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select

from certflow.engine.errors import InvalidInput
from certflow.engine.filter_parsing import parse_filter
from certflow.store.models import HumanTask, Instance
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


def conditions(flt: InboxFilter, username: str, now: datetime) -> list[ColumnElement[bool]]:
    """The filter's conditions on ``human_tasks`` (besides process, group and overdue, which
    the queue's inbox query takes itself), to add to a query that already limits the rows to
    what the actor may see."""
    where: list[ColumnElement[bool]] = []
    if flt.scope == "mine":
        where.append(HumanTask.assignee == username)
    elif flt.scope == "unassigned":
        where.append(HumanTask.assignee.is_(None))
    if flt.element_id:
        where.append(HumanTask.element_id == flt.element_id)
    if flt.due_within_days is not None:
        where.append(HumanTask.due_at <= now + timedelta(days=flt.due_within_days))
    if flt.candidate:
        where.append(or_(
            HumanTask.business_key == flt.candidate,
            HumanTask.instance_id.in_(select(Instance.id).where(Instance.subject == flt.candidate)),
        ))
    return where


def narrow(query: Select[Any], flt: InboxFilter, username: str, now: datetime) -> Select[Any]:
    return query.where(*conditions(flt, username, now))
