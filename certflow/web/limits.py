"""Request body size limits, enforced on the bytes actually received.

``BodyLimit`` is ASGI middleware: a declared ``Content-Length`` over the limit is refused before
the app runs; a body without one (chunked) is counted as it arrives and refused as soon as it
passes the limit, so a 10 MB JSON body never reaches the JSON parser. Either way the client
gets ``413 {"error": ...}``, and the rest of its body is read and discarded first (up to
``DRAIN_LIMIT``): a server that answers and closes while the client is still sending makes the
client see a connection reset instead of the 413.

A form or upload refused on a page route (a path outside ``JSON_PREFIXES``, a form content
type) gets a page instead of JSON: the middleware answers with the app's own
``REFUSAL_PAGE`` route (a GET with the refused path and limit in the query, and the request's
cookies), so the refusal is rendered in the visitor's language, in the site's layout, 413.

Most routes take small JSON (``DEFAULT_LIMIT``); routes that take uploads name their own limit
in ``LIMITS`` (longest matching path prefix wins).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 1024 * 1024  # JSON bodies: forms, messages, payments
LIMITS: dict[str, int] = {
    "/api/payments/camt053": 5 * 1024 * 1024,  # a bank statement (payments.MAX_STATEMENT_BYTES)
    # The same statement uploaded on the office's page, plus its multipart envelope: the page
    # itself refuses what is over 5 MB, next to the file field.
    "/payments/import": 6 * 1024 * 1024,
    # A dossier document (case_documents.MAX_BYTES, 10 MB) plus its multipart envelope: the page
    # itself refuses what is over 10 MB, with a message the candidate can act on.
    "/mijn/cases/": 11 * 1024 * 1024,
    # A process's files as a draft (deploy.MAX_SOURCES_CHARS): the studio itself refuses what
    # is too large, naming the file.
    "/studio/": 12 * 1024 * 1024,
}
DRAIN_LIMIT = 64 * 1024 * 1024
# Routes that answer JSON (and their callers read JSON refusals); every other path is a page.
JSON_PREFIXES = ("/api", "/public", "/docs", "/redoc", "/openapi", "/metrics", "/healthz", "/readyz")
REFUSAL_PAGE = "/refused/too-large"


FORM_TYPES = (b"multipart/form-data", b"application/x-www-form-urlencoded")


def is_page_path(path: str) -> bool:
    return not path.startswith(JSON_PREFIXES)


def is_page_form(scope: Scope) -> bool:
    """A browser posting a form or an upload to a page (not a page's own JSON call, such as
    the studio's): its refusal is a page."""
    content_type = dict(scope["headers"]).get(b"content-type", b"").lower()
    return is_page_path(scope["path"]) and content_type.startswith(FORM_TYPES)


def limit_for(path: str) -> int:
    matches = [prefix for prefix in LIMITS if path.startswith(prefix)]
    return LIMITS[max(matches, key=len)] if matches else DEFAULT_LIMIT


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body passes its limit. An ``HTTPException`` because
    FastAPI turns anything else raised while it reads a body into a 400; the app's handler
    (``app.add_error_handlers``) answers 413 with ``refusal``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {_size(limit)}")
        self.limit = limit


def refusal(limit: int) -> dict[str, Any]:
    return {"error": f"request body is larger than {_size(limit)}", "limit": limit}


def _size(limit: int) -> str:
    return f"{limit // 2**20} MB" if limit % 2**20 == 0 else f"{limit:,} bytes"


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _drain(receive, int(declared))
            if is_page_form(scope):
                await self.app(_refusal_page_scope(scope, limit), _no_body, send)
            else:
                await _refuse(send, limit)
            return
        received, started = 0, False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, received)
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:  # raised where no handler turned it into the 413 already
            if started:
                raise
            await _refuse(send, limit)


def _refusal_page_scope(scope: Scope, limit: int) -> Scope:
    """The request, turned into a GET of the refusal page (same cookies and headers)."""
    query = urlencode({"path": scope["path"], "limit": limit}).encode()
    headers = [(k, v) for k, v in scope["headers"]
               if k not in (b"content-length", b"content-type", b"transfer-encoding")]
    return {**scope, "method": "GET", "path": REFUSAL_PAGE, "raw_path": REFUSAL_PAGE.encode(),
            "query_string": query, "headers": headers}


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _drain(receive: Receive, already: int) -> None:
    total = already
    while total <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(refusal(limit)).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
