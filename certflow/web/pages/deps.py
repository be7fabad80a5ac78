"""What page routes depend on: who is visiting (``Visitor``), signed-in users, roles, CSRF.

For page routers (webB's inbox and Mijn CMI build on these)::

    from certflow.web.pages.deps import CurrentUser, require_role, form_values
    from certflow.web.pages.rendering import render, redirect

    @router.get("/inbox")
    def inbox(request: Request, user: Annotated[Account, Depends(require_role("office"))]): ...

- ``CurrentUser``: the signed-in ``Account``; anonymous visitors are sent to the sign-in page
  (and come back afterwards); an expired session says so there.
- ``OptionalUser``: the ``Account`` or None (public pages).
- ``require_role(*roles)``: a dependency giving the ``Account`` when it holds any of the
  roles; otherwise a 403 page. ``actor_of(account)`` is the engine facade's ``Actor``.
- CSRF: every unsafe request (POST, PUT, PATCH, DELETE) to a router included in
  ``certflow.web.pages.router`` must carry the visitor's token, as the form field
  ``csrf_token`` (the ``csrf_field()`` macro) or the ``X-CSRF-Token`` header (htmx sends it:
  base.html sets ``hx-headers``). A wrong or missing token is refused with a 403 page before
  the route runs, so nothing changes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import Response

from certflow import i18n
from certflow.services import access
from certflow.services.accounts import Account
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.web.text_input import line_breaks, refuse_control
from certflow.web.deps import actor_of  # noqa: F401  (re-exported for page routers)

SESSION_COOKIE = "certflow_session"
VISITOR_COOKIE = "certflow_visitor"
LANGUAGE_COOKIE = "certflow_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(Exception):
    def __init__(self, next_url: str, expired: bool) -> None:
        self.next_url, self.expired = next_url, expired


class CsrfRefused(Exception):
    pass


class PageForbidden(Exception):
    pass


@dataclass
class Visitor:
    """The person (or anonymous browser) behind a page request."""

    account: Account | None
    language: str
    csrf_token: str
    # A session cookie came with the request but its session is over (expired, signed out).
    session_ended: bool = False
    _set: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    _delete: set[str] = field(default_factory=set)

    def set_cookie(self, name: str, value: str, max_age: int | None = None) -> None:
        self._set[name] = (value, max_age)
        self._delete.discard(name)

    def delete_cookie(self, name: str) -> None:
        self._delete.add(name)
        self._set.pop(name, None)

    def apply_cookies(self, request: Request, response: Response) -> None:
        # Secure where the page is served over https, or the site is (``public_url``): behind
        # a proxy that ends TLS the request itself may look like http (FORWARDED_ALLOW_IPS not
        # set), and the session cookie must still never go over http. Plain
        # http://127.0.0.1 (the embedded default) must keep working.
        secure = request.url.scheme == "https" or get_settings().public_url.startswith("https://")
        for name, (value, max_age) in self._set.items():
            response.set_cookie(name, value, max_age=max_age, httponly=True, secure=secure,
                                samesite="lax", path="/")
        for name in self._delete:
            response.delete_cookie(name, path="/", httponly=True, secure=secure, samesite="lax")


def _anonymous_csrf(visitor_id: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"csrf:{visitor_id}".encode(), hashlib.sha256).hexdigest()


def visitor_of(request: Request) -> Visitor:
    """The visitor of this request, read once (session lookup) and kept on request.state."""
    cached = getattr(request.state, "visitor", None)
    if isinstance(cached, Visitor):
        return cached
    cookie = request.cookies.get(SESSION_COOKIE)
    browser = None
    if cookie:
        with session_scope() as session:
            browser = access.resume_session(session, get_settings(), cookie)
    account = browser.account if browser else None
    language = i18n.pick_language(account.language if account else None,
                                  request.cookies.get(LANGUAGE_COOKIE),
                                  request.headers.get("accept-language"))
    if browser is not None:
        visitor = Visitor(account, language, browser.csrf_token)
    else:
        # Anonymous forms (sign-in, register, reset) are protected too: their token is
        # bound to a random per-browser cookie.
        visitor_id = request.cookies.get(VISITOR_COOKIE) or ""
        new_id = len(visitor_id) < 20
        if new_id:
            visitor_id = secrets.token_urlsafe(24)
        visitor = Visitor(None, language, _anonymous_csrf(visitor_id), session_ended=bool(cookie))
        if new_id:
            visitor.set_cookie(VISITOR_COOKIE, visitor_id, max_age=365 * 24 * 3600)
        if cookie:
            visitor.delete_cookie(SESSION_COOKIE)
    request.state.visitor = visitor
    return visitor


def get_visitor(request: Request) -> Visitor:
    return visitor_of(request)


def _here(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method not in SAFE_METHODS:
        target = request.headers.get("HX-Current-URL") or request.url.path
    return target


def current_user(request: Request) -> Account:
    visitor = visitor_of(request)
    if visitor.account is None:
        raise SignInRequired(_here(request), visitor.session_ended)
    return visitor.account


def optional_user(request: Request) -> Account | None:
    return visitor_of(request).account


def require_role(*roles: str) -> Callable[[Request], Account]:
    """A dependency: the signed-in account if it holds any of ``roles``, else a 403 page."""

    def dependency(request: Request) -> Account:
        account = current_user(request)
        if not account.has_role(*roles):
            raise PageForbidden()
        return account

    dependency.__name__ = f"require_role_{'_'.join(roles)}"
    return dependency


def require_staff(request: Request) -> Account:
    account = current_user(request)
    if not account.is_staff:
        raise PageForbidden()
    return account


async def csrf_protect(request: Request) -> None:
    """Router-level dependency of every page route: unsafe methods need the CSRF token."""
    request.state.is_page = True
    if request.method in SAFE_METHODS:
        return
    visitor = visitor_of(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, visitor.csrf_token):
        if visitor.session_ended:
            raise SignInRequired(_here(request), expired=True)
        raise CsrfRefused()


async def form_values(request: Request) -> dict[str, str]:
    """The posted form as {name: value} (the last value of a repeated name; see form_lists),
    without the CSRF token, values stripped. A field with a control character is refused
    (``TextRefused``: a 422 page naming it), every value of it, before the route acts; a
    vertical tab or form feed (Word's line break, pasted) is read as a line break."""
    form = await request.form()
    refuse_control((k, line_breaks(v)) for k, v in form.multi_items() if isinstance(v, str))
    return {k: line_breaks(v).strip() for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


async def form_lists(request: Request) -> dict[str, list[str]]:
    """Repeated names (checkbox groups, multi-selects) as lists; refused as form_values is."""
    form = await request.form()
    refuse_control((k, line_breaks(v)) for k, v in form.multi_items() if isinstance(v, str))
    return {k: [line_breaks(v) for v in form.getlist(k) if isinstance(v, str)] for k in form.keys()
            if k != CSRF_FIELD}


def sign_in_url(next_url: str, expired: bool = False) -> str:
    return f"/sign-in?next={quote(next_url, safe='/')}" + ("&expired=1" if expired else "")


def safe_next(value: str | None, default: str) -> str:
    """Only paths on this site: never an absolute or protocol-relative URL (open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


VisitorDep = Annotated[Visitor, Depends(get_visitor)]
CurrentUser = Annotated[Account, Depends(current_user)]
OptionalUser = Annotated[Account | None, Depends(optional_user)]
StaffUser = Annotated[Account, Depends(require_staff)]
PageDeps: list[Any] = [Depends(csrf_protect)]


def field_errors(exc: Exception, default_field: str) -> dict[str, str]:
    """A service error's per-field messages (``fields`` detail), or its message on one field."""
    fields = getattr(exc, "details", {}).get("fields")
    # Messages stay what they are (not str()): a certflow.i18n.Message is translated where shown.
    if isinstance(fields, dict):
        return {str(k): v if isinstance(v, str) else str(v) for k, v in fields.items()}
    message = getattr(exc, "message", None)
    return {default_field: message if isinstance(message, str) else str(exc)}
