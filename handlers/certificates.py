"""Operators ``certificates/issue`` and ``certificates/english_copy``: adapters over
``certflow.services.certificates`` (register numbers, validity, the PDF; inputs and results are
documented there)."""

from __future__ import annotations

from typing import Any

from certflow.i18n import N_
from certflow.services import certificates
from certflow.services.certificates import CopyCertificate, IssueCertificate
from handlers import HandlerContext, handler


@handler("certificates/issue", effects="database",
         summary=N_("Issue the certificate: a register number, its validity and the PDF."))
def issue_certificate(ctx: HandlerContext, data: IssueCertificate) -> dict[str, Any]:
    return certificates.issue_certificate(ctx, data)


@handler("certificates/english_copy", effects="database",
         summary=N_("Make an English copy of an issued certificate."))
def english_copy(ctx: HandlerContext, data: CopyCertificate) -> dict[str, Any]:
    return certificates.english_copy(ctx, data)
