"""What the studio keeps besides process drafts: drafts of the shared files process owners edit
(the fee and VAT tables, the email texts), and the deployed versions of the email texts.

A draft changes nothing that runs. Deploying a fee or VAT table draft adds a ``SharedTable``
version; deploying an email text draft adds an ``EmailTemplate`` version, which the email
service prefers over the file of the same name (the files stay version 0, the fallback).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from certflow.store.base import Base


class StudioSharedDraft(Base):
    __tablename__ = "studio_shared_drafts"

    # "fees.dmn", "vat.dmn", or "email/<template>.<lang>.<txt|html>"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    # The deployed version the draft started from (None: the file, never deployed).
    base_version: Mapped[int | None] = mapped_column(Integer)
    saved_by: Mapped[str] = mapped_column(String(100))
    saved_at: Mapped[datetime]
    # Raised by every save; a save carrying an older one is refused (certflow.store.studio).
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class EmailTemplate(Base):
    """A deployed version of one email template file (``certification/granted.nl.txt``)."""

    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int]
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str] = mapped_column(String(100))
