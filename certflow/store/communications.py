"""Outgoing email, one row per message, keyed by the idempotency key of the job that sent it.

The row is written before the message leaves and marked ``sent`` after, so a redelivered job
finds it and sends nothing twice; the stored text is what the person actually received.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certflow.store.base import Base, new_id


class EmailMessage(Base):
    __tablename__ = "email_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # The database, not a check in code, guarantees one message per key.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    # A username, not a foreign key: the record of what was sent outlives the account.
    recipient: Mapped[str] = mapped_column(String(100), index=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    template: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(5))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    # queued | sent | failed
    status: Mapped[str] = mapped_column(String(10), index=True)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    error: Mapped[str | None] = mapped_column(Text)
    # Numbers of the invoices whose documents go with the mail (see handlers' email/send),
    # kept so a retried send attaches exactly the same ones.
    attached_invoices: Mapped[list[Any]] = mapped_column(default=list)
