"""The process owners' studio: one draft per process, edited in the browser and never run.

A draft is what a process folder holds (``{relative path: text}``, as ``Definition.sources``
stores a deployed version). Saving it changes nothing that runs; only a deploy from it creates
a new definition version (certflow.engine.studio).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from certflow.store.base import Base


class StudioDraft(Base):
    __tablename__ = "studio_drafts"

    process_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    sources: Mapped[dict[str, Any]]
    # The deployed version the draft started from (None: a process never deployed).
    base_version: Mapped[int | None] = mapped_column(Integer)
    saved_by: Mapped[str] = mapped_column(String(100))
    saved_at: Mapped[datetime]
