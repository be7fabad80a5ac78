"""Saved inbox filters: a clerk names a filter to reuse it, and may share it with a group.

The criteria are kept as the plain dict the inbox's filter gives (certflow.engine.
inbox_filters.InboxFilter.to_dict); the page checks them before saving. Shared filters are
read-only for the group (only the owner deletes), so a filter the office relies on cannot be
changed by whoever opened it last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certflow.clock import CLOCK
from certflow.errors import Conflict, Forbidden, InvalidInput, NotFound
from certflow.services.viewer import Member
from certflow.store.workspace import SavedFilter
from certflow.i18n import Message, N_

MAX_PER_USER = 50


@dataclass(frozen=True)
class SavedFilterView:
    id: int
    name: str
    owner: str
    shared_group: str | None
    criteria: dict[str, Any]
    mine: bool


def _view(row: SavedFilter, viewer: Member) -> SavedFilterView:
    return SavedFilterView(row.id, row.name, row.owner, row.shared_group, dict(row.criteria),
                           row.owner == viewer.username)


def visible(session: Session, viewer: Member) -> list[SavedFilterView]:
    """Mine first, then those shared with my groups, each by name."""
    rows = session.scalars(select(SavedFilter).where(or_(
        SavedFilter.owner == viewer.username,
        SavedFilter.shared_group.in_(viewer.groups or ("",)),
    ))).all()
    return sorted((_view(r, viewer) for r in rows), key=lambda v: (not v.mine, v.name.lower()))


def get(session: Session, viewer: Member, filter_id: int) -> SavedFilterView:
    for view in visible(session, viewer):
        if view.id == filter_id:
            return view
    raise NotFound(Message(N_("no saved filter %(filter)s of yours or your groups"), filter=filter_id))


def save(session: Session, viewer: Member, name: str, criteria: dict[str, Any],
         shared_group: str | None = None) -> SavedFilterView:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput(Message(N_("give the filter a name of 1 to 100 characters")), field="name")
    if not criteria:
        raise InvalidInput(Message(N_("choose at least one condition before saving a filter")), field="name")
    shared_group = shared_group or None
    if shared_group and shared_group not in viewer.groups:
        raise Forbidden(Message(N_("you can share only with a group you are in, not '%(group)s'"), group=shared_group),
                        field="shared_group")
    count = session.scalar(select(func.count()).select_from(SavedFilter)
                           .where(SavedFilter.owner == viewer.username)) or 0
    if count >= MAX_PER_USER:
        raise InvalidInput(Message(N_("you have %(n)s saved filters; delete one first"), n=MAX_PER_USER), field="name")
    row = SavedFilter(owner=viewer.username, name=name, shared_group=shared_group,
                      criteria=dict(criteria), created_at=CLOCK.now())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(Message(N_("you already have a filter named '%(name)s'"), name=name), field="name") from None
    return _view(row, viewer)


def delete(session: Session, viewer: Member, filter_id: int) -> None:
    row = session.get(SavedFilter, filter_id)
    if row is None or (row.owner != viewer.username and row.shared_group not in viewer.groups):
        raise NotFound(Message(N_("no saved filter %(filter)s of yours or your groups"), filter=filter_id))
    if row.owner != viewer.username:
        raise Forbidden(Message(N_("filter '%(name)s' is %(owner)s's; only they may delete it"), name=row.name,
                                owner=row.owner))
    session.delete(row)
