"""A studio save refused because someone else saved the same draft since the editor opened
it (``DraftConflict``): the words for it in the visitor's language, as JSON for the modeler
and as context for the text editors' pages (forms, fee tables, email texts). Both keep what
the refused owner typed, so nothing is lost: the page shows it beside the saved draft, the
modeler offers it as a download."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from certflow import i18n
from certflow.errors import DraftConflict
from certflow.i18n import N_
from certflow.web.pages import formats
from certflow.web.pages.deps import visitor_of

SAVED_SINCE = N_("%(who)s saved this draft on %(when)s, after you opened it.")
GONE_SINCE = N_("This draft was deployed or discarded after you opened it.")


def conflict_text(language: str, exc: DraftConflict) -> str:
    if exc.saved_by is None or exc.saved_at is None:
        return i18n.gettext(language, GONE_SINCE)
    return i18n.gettext(language, SAVED_SINCE) % {"who": exc.saved_by,
                                                  "when": formats.date_time(exc.saved_at, language)}


def conflict_json(request: Request, exc: DraftConflict) -> JSONResponse:
    """409 with who saved and when (and the words for it), and the revision now saved."""
    language = visitor_of(request).language
    return JSONResponse({"error": conflict_text(language, exc), "problems": [], "conflict": {
        "saved_by": exc.saved_by, "saved_at": exc.saved_at.isoformat() if exc.saved_at else None,
        "revision": exc.revision}}, status_code=409)


def conflict_context(request: Request, exc: DraftConflict) -> dict[str, Any]:
    """What a text editor's page shows about the conflict (template ``studio/_conflict.html``)."""
    return {"conflict": {"text": conflict_text(visitor_of(request).language, exc), "revision": exc.revision}}


def revision_of(value: Any) -> int | None:
    """The revision a save carries (a form field or JSON value); None when it carries none.
    JSON's ``1e999`` is infinity, whose int() overflows: -1, a revision no draft has, so the
    save is refused as any stale one is and nothing changes."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    except OverflowError:
        return -1
