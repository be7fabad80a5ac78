"""The process owners' studio: one draft per process, edited in the browser and never run.

A draft is what a process folder holds (``{relative path: text}``, as ``Definition.sources``
stores a deployed version). Saving it changes nothing that runs; only a deploy from it creates
a new definition version (certflow.engine.studio).

Drafts are edited by more than one owner, so each carries a ``revision`` that every save
raises by one. An editor loads a revision and a save carries it back; a save carrying an old
revision is refused (``DraftConflict``, who saved and when) instead of silently overwriting
what the other owner saved. Revision 0 means "no draft" (never saved, or deployed/discarded).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Integer, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from certflow.errors import DraftConflict
from certflow.store.base import Base


class StudioDraft(Base):
    __tablename__ = "studio_drafts"

    process_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    sources: Mapped[dict[str, Any]]
    # The deployed version the draft started from (None: a process never deployed).
    base_version: Mapped[int | None] = mapped_column(Integer)
    saved_by: Mapped[str] = mapped_column(String(100))
    saved_at: Mapped[datetime]
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class DraftRow(Protocol):
    revision: int
    saved_by: str
    saved_at: datetime


Row = TypeVar("Row", bound=Base)


def next_revision(draft: DraftRow | None, expected: int | None, name: str) -> int:
    """The revision a save of ``draft`` (None: there is none) gets, after checking the editor
    saw the current one. ``expected`` None saves unconditionally (restore, upload: they replace
    the draft on purpose, and still move the revision on, so open editors notice)."""
    current = draft.revision if draft is not None else 0
    if expected is not None and expected != current:
        raise DraftConflict(name, current, draft.saved_by if draft else None, draft.saved_at if draft else None)
    return current + 1


def save_into(session: Session, model: type[Row], key: str, expected: int | None, name: str,
              fill: Callable[[Row], None]) -> Row:
    """The draft ``model`` keyed ``key``, locked, checked against ``expected`` (``next_revision``),
    filled by ``fill`` and given its next revision; a new row when there is none.

    Two first saves at once (a double click on "save", two owners opening a process never
    drafted): both find no row, and the second insert breaks the primary key once the first
    commits. That insert runs in a savepoint, and the loser reads the winner's row and is
    checked against it like any later save: a conflict when its editor expected no draft
    (revision 0), else it saves over it, as an unconditional save does."""
    draft = session.get(model, key, with_for_update=True)
    if draft is None:
        revision = next_revision(None, expected, name)
        fresh = model()
        setattr(fresh, _key_of(model), key)
        fill(fresh)
        fresh.revision = revision  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.add(fresh)
            return fresh
        except IntegrityError:  # the savepoint's rollback took ``fresh`` out of the session
            draft = session.get(model, key, with_for_update=True, populate_existing=True)
            if draft is None:  # the other save's row is gone again (deployed or discarded)
                raise
    revision = next_revision(draft, expected, name)  # type: ignore[arg-type]
    fill(draft)
    draft.revision = revision  # type: ignore[attr-defined]
    return draft


def _key_of(model: type[Base]) -> str:
    (column,) = model.__table__.primary_key.columns  # type: ignore[attr-defined]
    return str(column.key)
