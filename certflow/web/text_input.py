"""Text that no field takes is refused at the edge, once, before any route sees it.

Control characters (C0: U+0000-U+001F, except tab, line feed and carriage return) are typed by
nobody; they come from a tampered form or URL. PostgreSQL refuses a NUL in any text
(psycopg's DataError: a 500), and what does get stored breaks later readers: a saved inbox
filter made the group's inbox fail, a task form's text the analytics' JSON reads, a street the
invoice's XML. So:

- a path or query parameter with one: ``ControlCharacters`` (ASGI middleware) answers 422
  before routing: JSON naming the parameter for the API (``{"error": ..., "field": ...}``, as
  every ``CertflowError``), a page for the browser;
- a page form field with one: ``certflow.web.pages.deps.form_values``/``form_lists`` raise
  ``TextRefused`` (422, naming the field; a page in the visitor's language). Except the
  vertical tab and the form feed there, read as the line breaks they are (``line_breaks``):
  Word and PowerPoint end a line inside a paragraph with a vertical tab, and a dossier written
  there and pasted into a task's form must not be refused for it;
- a JSON body with one in any string, key or value: ``certflow.web.json_bodies`` raises
  ``TextRefused`` naming the JSON path (``data.motivation``).

Lone surrogates (U+D800-U+DFFF) are refused with them: no text holds one, and a browser's form
cannot send one (it is decoded as U+FFFD), but JSON's ``"\\ud800"`` escape makes one. Stored,
it failed every answer that showed it, which cannot be encoded: a candidate's motivation made
the office's inbox a 500, page and API alike; a studio form's title its preview. PostgreSQL's
text columns refuse it too.

Numbers typed as text are read with ``whole_number``: ``"²".isdigit()`` is true and
``int("²")`` raises, and ``"٣"`` (Arabic-Indic 3) reads as 3.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from certflow.errors import InvalidInput
from certflow.i18n import N_, Message
from certflow.web.limits import is_page_path

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
REFUSAL_PAGE = "/refused/control-character"
REFUSED = N_("%(field)s contains a control character (such as a NUL byte) or a lone surrogate "
             "(such as \\ud800), which no field accepts. Nothing has changed. Go back, retype the text "
             "and try again.")


# Word's line break inside a paragraph (Shift+Enter) is a vertical tab; a form feed a page break.
_AS_LINE_BREAKS = str.maketrans({"\x0b": "\n", "\x0c": "\n"})


def line_breaks(text: str) -> str:
    """``text`` with its vertical tabs and form feeds as line feeds (a page form's values)."""
    return text.translate(_AS_LINE_BREAKS)


class TextRefused(InvalidInput):
    """A field, parameter or JSON value with a control character (422, naming ``field``)."""

    def __init__(self, field: str) -> None:
        super().__init__(Message(REFUSED, field=field), field=field)


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


def refuse_control(values: Iterable[tuple[str, str]]) -> None:
    """Raise ``TextRefused`` for the first name or value with a control character."""
    for name, value in values:
        if has_control(name) or has_control(value):
            raise TextRefused(_printable(name))


def control_path(value: Any) -> str | None:
    """The JSON path of the first string (key or value) in ``value`` with a control character,
    or None. Iterative, as ``json_bodies.json_depth_problem`` is."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if has_control(item):
                return path or "body"
        elif isinstance(item, dict | list):
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                where = f"{path}.{_printable(str(key))}" if path else _printable(str(key))
                if isinstance(key, str) and has_control(key):
                    return where
                stack.append((child, where))
    return None


# No figure a form asks for comes near this; 1e308 was stored as a 309-digit integer.
MAX_NUMBER = 10**15
TOO_LARGE = N_("This number is too large; enter a smaller one.")


def number_path(value: Any) -> str | None:
    """The JSON path of the first number in ``value`` that is not finite (NaN, Infinity:
    Python's JSON reads them) or past ``MAX_NUMBER`` either way, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, int | float) and not isinstance(item, bool):
            if not math.isfinite(item) or abs(item) > MAX_NUMBER:
                return path or "body"
        elif isinstance(item, dict | list):
            children = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, f"{path}.{key}" if path else str(key)) for key, child in children)
    return None


def _printable(name: str) -> str:
    return CONTROL.sub("?", name)[:100]


def whole_number(text: str, digits: int = 9) -> int | None:
    """``text`` as a non-negative whole number of at most ``digits`` ASCII digits, or None."""
    if text.isascii() and text.isdecimal() and len(text) <= digits:
        return int(text)
    return None


def _parameter_problem(scope: Scope) -> str | None:
    """The name of the first path segment or query parameter with a control character."""
    if has_control(scope.get("path", "")):
        return "path"
    query = scope.get("query_string", b"").decode("latin-1")
    try:
        refuse_control(parse_qsl(query, keep_blank_values=True))
    except TextRefused as exc:
        return str(exc.details["field"])
    return None


class ControlCharacters:
    """Refuse a request whose path or query has a control character (decoded: ``%00``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        field = _parameter_problem(scope) if scope["type"] == "http" else None
        if field is None:
            await self.app(scope, receive, send)
            return
        if not is_page_path(scope["path"]):
            message = TextRefused(field).message
            body = json.dumps({"error": message, "field": field}).encode()
            await send({"type": "http.response.start", "status": 422, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        # A browser: the app's own refusal page, in the visitor's language and the site's layout.
        headers = [(k, v) for k, v in scope["headers"]
                   if k not in (b"content-length", b"content-type", b"transfer-encoding")]
        page = {**scope, "method": "GET", "path": REFUSAL_PAGE, "raw_path": REFUSAL_PAGE.encode(),
                "query_string": urlencode({"field": field}).encode(), "headers": headers}
        await self.app(page, _no_body, send)


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}
