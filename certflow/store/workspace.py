"""What people keep in the application besides the processes: the clerks' saved inbox
filters and the files candidates upload to their case (dossier documents).

Documents are stored in the database, not under var/: one transaction covers the row, its
checksum and its bytes (an upload is never half there), one backup holds everything, and
several web containers need no shared volume. The size limit (see
certflow.services.case_documents) keeps the table reasonable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from certflow.store.base import Base, new_id


class SavedFilter(Base):
    """A named inbox filter. Owned by one user; with ``shared_group`` set, every member of
    that group sees it too (read-only: only the owner changes or deletes it)."""

    __tablename__ = "saved_filters"
    __table_args__ = (Index("ix_saved_filters_owner_name", "owner", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    shared_group: Mapped[str | None] = mapped_column(String(100), index=True)
    # certflow.engine.inbox_filters.InboxFilter.to_dict()
    criteria: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Document(Base):
    """A file uploaded to a case (a process instance). Immutable: a new version is a new row."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    # The person the document is about (the case's candidate), for export and erasure.
    owner: Mapped[str] = mapped_column(String(100), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    # Detected from the content, never taken from the browser.
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # Loaded only when downloaded: a case page lists documents without their bytes.
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_at: Mapped[datetime]


class TaskDraft(Base):
    """What someone typed into a task's form and kept without sending it (a candidate's dossier
    is written over weeks). One per task and person; gone once the task leaves the queue."""

    __tablename__ = "task_drafts"

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    data: Mapped[dict[str, Any]]
    saved_at: Mapped[datetime]
