"""A file a person downloads (an invoice PDF, a UBL e-invoice, a certificate): bytes, media
type and the file name to offer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    content: bytes
    media_type: str
    filename: str
