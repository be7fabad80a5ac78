"""JSON request bodies that cannot be read get an answer that says why, on every JSON route.

FastAPI answers a body it fails to parse with a bare ``400 "There was an error parsing the
body"``: a body nested 100,000 deep ends that way (the parser's recursion limit), and so do
bodies it could not name. The API's routes use ``JsonRoute``, which reads the body first and
refuses, as ``{"error": ...}`` naming the limit:

- nesting deeper than ``MAX_JSON_DEPTH`` levels: 400, before any validation sees it;
- a string anywhere in it (a key or a value, task data included) with a control character:
  422 naming its path (``certflow.web.text_input``); so is a number that is not finite
  (NaN, Infinity) or past 1e15 either way;
- (bodies over their byte limit get 413 from ``certflow.web.limits.BodyLimit`` before this.)

Two more refusals come after the caller is authenticated (FastAPI solves the token dependency
before it validates the body), from ``body_refusal`` in the app's validation-error handler:

- a body that is not JSON (``Content-Type: text/plain``, a form): 415, saying to send JSON;
- JSON that is not an object (an array, a string, a number): 422, saying what it got;
- no body at all where one is required: 422.

Well-formed but invalid JSON keeps FastAPI's 422 with the position of the error.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from certflow.errors import CertflowError, InvalidInput
from certflow.web.text_input import MAX_NUMBER, TextRefused, control_path, number_path

# Task data may nest 50 levels (the engine's own bound, checked per field); the body around it
# (``{"data": {...}}``) adds a few. Nothing the API takes needs more.
MAX_JSON_DEPTH = 64


class BodyUnreadable(CertflowError):
    status = 400


def json_depth_problem(value: Any, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Where ``value`` nests deeper than ``limit`` levels (a JSON path), or None. Iterative:
    a deep value must not exhaust the stack of the check meant to stop it."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "body")]
    while stack:
        item, depth, path = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return path
        children = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, f"{path}.{key}"))
    return None


def _too_deep(where: str | None = None) -> BodyUnreadable:
    at = f" (at {where})" if where else ""
    return BodyUnreadable(f"JSON body is nested deeper than {MAX_JSON_DEPTH} levels{at}",
                          limit=MAX_JSON_DEPTH)


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # FastAPI reads a body without a content type as JSON
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


async def check_json_body(request: Request) -> None:
    """Parse a JSON body once, refusing one nested past the limit. The parsed value is left
    where Starlette's ``Request.json()`` caches it, so FastAPI does not parse it again."""
    if not is_json(request.headers.get("content-type")):
        return  # refused after authentication, by body_refusal
    body = await request.body()
    if not body:
        return
    try:
        value = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        return  # malformed: FastAPI's 422 names the position
    where = json_depth_problem(value)
    if where is not None:
        raise _too_deep(where)
    where = control_path(value)
    if where is not None:
        raise TextRefused(where)
    where = number_path(value)
    if where is not None:
        raise InvalidInput(f"{where} is not a finite number between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}",
                           field=where)
    request._json = value  # Starlette's cache for Request.json()


class JsonRoute(APIRoute):
    """An API route whose JSON body is read by ``check_json_body`` before FastAPI's parser."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def checked(request: Request) -> Response:
            await check_json_body(request)
            return await handler(request)

        return checked


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def body_refusal(request: Request, errors: list[dict[str, Any]]) -> tuple[int, dict[str, Any]] | None:
    """The answer for a body that is not a JSON object at all, or None for ordinary field
    errors. ``errors`` are FastAPI's validation errors."""
    # Errors about the body as a whole that are not about its type (a model validator's
    # "give invoice_number or payment_reference") stay ordinary field errors.
    whole = [e for e in errors if tuple(e.get("loc", ())) == ("body",)
             and (e.get("type") == "missing" or not isinstance(e.get("input"), dict))]
    if not whole:
        return None
    content_type = request.headers.get("content-type")
    if whole[0].get("type") == "missing" and getattr(request, "_json", None) is None \
            and request.headers.get("content-length", "0") not in ("", "0"):
        return 422, {"error": "the body must be a JSON object ({...}), not null"}
    if whole[0].get("type") == "missing":
        return 422, {"error": "the request has no body: send a JSON object "
                              "(Content-Type: application/json)"}
    if not is_json(content_type):
        got = (content_type or "").split(";")[0].strip()
        return 415, {"error": f"the body must be JSON (Content-Type: application/json), not {got}"}
    return 422, {"error": f"the body must be a JSON object ({{...}}), not {_kind(whole[0].get('input'))}"}
