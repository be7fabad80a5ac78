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

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

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


def next_revision(draft: DraftRow | None, expected: int | None, name: str) -> int:
    """The revision a save of ``draft`` (None: there is none) gets, after checking the editor
    saw the current one. ``expected`` None saves unconditionally (restore, upload: they replace
    the draft on purpose, and still move the revision on, so open editors notice)."""
    current = draft.revision if draft is not None else 0
    if expected is not None and expected != current:
        raise DraftConflict(name, current, draft.saved_by if draft else None, draft.saved_at if draft else None)
    return current + 1
