"""Refusals a browser gets as a page, not as the API's JSON: a form or upload over its size
limit (certflow.web.limits answers with this route after draining the body), and an address
with a control character (certflow.web.text_input answers with this route before routing)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from certflow.i18n import N_, Message
from certflow.services import case_documents as documents
from certflow.web import text_input
from certflow.web.limits import DEFAULT_LIMIT, REFUSAL_PAGE
from certflow.web.pages.deps import safe_next
from certflow.web.pages.rendering import render

router = APIRouter()

UPLOAD = N_("The file is larger than %(mb)s MB, so it was not added. Make it smaller (for "
            "example by saving it as PDF) and upload it again.")
ADDRESS = N_("The address of this page contains a control character (such as a NUL byte), so "
              "it was not opened. Nothing has changed. Go back and try again.")
FORM = N_("What you sent is larger than %(mb)s MB, so it was not accepted. Shorten it and "
          "send it again.")


def too_large(request: Request, path: str, limit: int) -> Response:
    """The 413 page: what was too large, how large it may be, and the way back."""
    upload = path.startswith("/mijn/cases/") and path.endswith("/documents")
    mb = (documents.MAX_BYTES if upload else limit) // 2**20 or 1
    back = safe_next(request.headers.get("HX-Current-URL") or _referer_path(request), "")
    if not back and upload:
        back = path.rsplit("/documents", 1)[0]
    return render(request, "errors/too_large.html", {
        "message": UPLOAD if upload else FORM, "mb": mb, "back": back or "/", "upload": upload,
    }, status_code=413)


def _referer_path(request: Request) -> str:
    referer = request.headers.get("referer", "")
    host = request.headers.get("host", "")
    for scheme in ("https://", "http://"):
        prefix = f"{scheme}{host}"
        if host and referer.startswith(prefix + "/"):
            return referer[len(prefix):]
    return ""


@router.get(REFUSAL_PAGE)
def too_large_page(request: Request, path: str = "",
                   limit: Annotated[int, Query(le=2**40)] = DEFAULT_LIMIT) -> Response:
    return too_large(request, path[:500], max(limit, 1))


@router.get(text_input.REFUSAL_PAGE)
def control_character_page(request: Request, field: str = "") -> Response:
    message = ADDRESS if field in ("", "path") else Message(text_input.REFUSED, field=field[:100])
    return render(request, "errors/error.html", {"message": message}, status_code=422)
