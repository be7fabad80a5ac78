"""The browser application: server-rendered Jinja2 pages with htmx, mounted on the API's app.

How to add pages (webB's inbox, task pages and Mijn CMI do this)
------------------------------------------------------------------
1. A module here with ``router = APIRouter()``; include it in ``ROUTERS`` below. Every route
   in it gets CSRF checking (``deps.csrf_protect``) and HTML error pages.
2. Depend on ``deps.CurrentUser`` / ``deps.OptionalUser`` / ``deps.require_role("office")``;
   each gives a ``certflow.services.accounts.Account`` (``deps.actor_of(account)`` is the
   engine facade's ``Actor``;
   ``.has_role()``, ``.display_name``, ``.language``, ``.address``...).
3. Return ``rendering.render(request, "area/page.html", {...}, status_code=...)`` or
   ``rendering.redirect(request, url)`` (303; ``HX-Redirect`` for htmx). Read posted forms
   with ``await deps.form_values(request)`` (``form_lists`` for repeated names).
4. Templates extend ``base.html`` and fill ``{% block title %}``, ``{% block content %}``
   (optional: ``{% block head %}``, ``{% block scripts %}``, ``{% block wide %}``=1 for a
   full-width page). Form macros: ``{% import "macros/forms.html" as f %}`` then
   ``f.error_summary(errors)``, ``f.text(name, label, values, errors, hint=, type=,
   autocomplete=, required=)``, ``f.textarea``, ``f.select(name, label, options, ...)``
   (options: [(value, label)]), ``f.radios``, ``f.checkbox``, ``f.checkboxes``, ``f.date``,
   ``f.number``, ``f.csrf_field()``, ``f.button(label, secondary=)``. ``errors`` maps field
   name -> English message marked with ``N_`` (translated by the macros); an error summary at
   the top links to each field.
5. Filters: ``{{ d|date }}`` "15 maart 2029", ``{{ dt|datetime }}`` (Europe/Amsterdam),
   ``{{ amount|money }}`` "€ 786,50", ``{{ text|t }}`` (translate an N_-marked string).
   Texts in templates: ``{{ _("Save") }}`` / ``{% trans %}``; run the extraction described
   in certflow/i18n.py and translate to Dutch (tests/web/test_i18n.py checks).
6. Navigation: add a ``nav.NavItem`` to ``nav.NAV``; ``nav.home_url`` sends staff to
   ``/inbox`` and candidates to ``/mijn`` once those routes exist.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from python_multipart.exceptions import FormParserError
from starlette.exceptions import HTTPException as StarletteHTTPException

from certflow.errors import CertflowError
from certflow.i18n import N_
from certflow.settings import ROOT
from certflow.web.limits import BodyTooLarge, is_page_form
from certflow.web.pages import (account, admin, analytics, auth, dashboard, escalations, inbox, mijn,
                                mijn_apply, monitor, payments, refusals, register, studio, studio_emails,
                                studio_forms, studio_tables)
from certflow.web.pages.deps import (
    PageDeps,
    CsrfRefused,
    PageForbidden,
    SignInRequired,
    sign_in_url,
)
from certflow.web.pages.rendering import redirect, render

log = logging.getLogger(__name__)

STATIC_DIR = ROOT / "certflow" / "web" / "static"
NODE_MODULES = ROOT / "node_modules"
# What the pages load from npm packages (package.json): mounted file by file, not the tree.
VENDOR = {"htmx.org": "htmx.org/dist", "axe-core": "axe-core", "bpmn-js": "bpmn-js/dist",
          "dmn-js": "dmn-js/dist"}
# What ``make install`` builds from npm packages that ship ES modules only (the studio's
# modeler bundle: esbuild, see the Makefile); git-ignored, served as /static/build.
BUILD_DIR = ROOT / "build" / "web"

BAD_REQUEST = N_("This page did not get what it needs: a field or file is missing or not "
                 "what was expected. Nothing has changed. Go back and try again.")

ROUTERS: list[APIRouter] = [auth.router, account.router, admin.router, register.router,
                            inbox.router, escalations.router, mijn.router, mijn_apply.router,
                            dashboard.router, payments.router, analytics.router, studio_forms.router,
                            studio_tables.router,
                            studio_emails.router,
                            studio.router,
                            monitor.router, refusals.router]


@lru_cache(maxsize=1)
def build_router() -> APIRouter:
    """The pages' routes under one router, built once per process (like ``api_router``): an
    app copies a router's routes when it includes it, and analysing every route's parameters
    and dependencies is most of what making an app costs (0.2-0.4 s for 217 routes; tests make
    one per test). Nothing here depends on the app or the settings."""
    router = APIRouter(dependencies=PageDeps, include_in_schema=False)
    for sub in ROUTERS:
        router.include_router(sub)
    return router


def _is_page(request: Request) -> bool:
    if getattr(request.state, "is_page", False):
        return True
    path = request.url.path
    return not path.startswith(("/api", "/public", "/docs", "/openapi", "/static")) and \
        "text/html" in request.headers.get("accept", "")


def _is_page_route(request: Request) -> bool:
    """The request matched a route of this package and is not one of a page's own JSON calls
    (the studio's), which keep JSON refusals."""
    if "json" in request.headers.get("content-type", "") or \
            request.headers.get("accept", "").startswith("application/json"):
        return False
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    return bool(getattr(endpoint, "__module__", "").startswith(__name__ + "."))


def install(app: FastAPI) -> None:
    """Mount the pages, their static files and their error pages on ``app``."""
    app.mount("/static/app", StaticFiles(directory=STATIC_DIR), name="static")
    for package, folder in VENDOR.items():
        path = NODE_MODULES / folder
        if not path.is_dir():
            log.warning("%s missing: run `make install` (npm ci)", path)
        app.mount(f"/static/vendor/{package}", StaticFiles(directory=path, check_dir=False),
                  name=f"vendor-{package}")
    if not BUILD_DIR.is_dir():
        log.warning("%s missing: run `make install` (builds the studio's modeler)", BUILD_DIR)
    app.mount("/static/build", StaticFiles(directory=BUILD_DIR, check_dir=False), name="static-build")
    app.include_router(build_router())
    _install_error_pages(app)


def _install_error_pages(app: FastAPI) -> None:
    api_domain_error = app.exception_handlers.get(CertflowError)
    api_http_error = app.exception_handlers.get(StarletteHTTPException)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return redirect(request, sign_in_url(exc.next_url, exc.expired))

    async def csrf_refused(request: Request, exc: Exception) -> Response:
        return render(request, "errors/csrf.html", status_code=403)

    async def forbidden(request: Request, exc: Exception) -> Response:
        return render(request, "errors/forbidden.html", status_code=403)

    async def domain_error(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, CertflowError)
        if _is_page(request):
            template = "errors/forbidden.html" if exc.status in (403, 404) else "errors/error.html"
            return render(request, template, {"message": exc.message}, status_code=exc.status)
        if api_domain_error is not None:
            return await api_domain_error(request, exc)  # type: ignore[misc]
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        if _is_page(request) and exc.status_code in (404, 405):
            return render(request, "errors/not_found.html", status_code=exc.status_code)
        if (_is_page(request) or _is_page_route(request)) and exc.status_code >= 400:
            return render(request, "errors/error.html", {"message": BAD_REQUEST},
                          status_code=exc.status_code, headers=getattr(exc, "headers", None))
        if api_http_error is not None:
            return await api_http_error(request, exc)  # type: ignore[misc]
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    api_too_large = app.exception_handlers.get(BodyTooLarge)

    async def too_large(request: Request, exc: Exception) -> Any:
        # A body without Content-Length, found too large while a page route read it.
        assert isinstance(exc, BodyTooLarge)
        if is_page_form(request.scope):
            return refusals.too_large(request, request.url.path, exc.limit)
        if api_too_large is not None:
            return await api_too_large(request, exc)  # type: ignore[misc]
        return JSONResponse({"error": exc.detail}, status_code=413)

    api_invalid = app.exception_handlers.get(RequestValidationError)

    async def invalid(request: Request, exc: Exception) -> Any:
        # A page's form or link without what its route needs (a missing file, a bad kind):
        # a page that says so, not the API's JSON.
        if _is_page_route(request):
            return render(request, "errors/error.html", {"message": BAD_REQUEST}, status_code=422)
        assert api_invalid is not None
        return await api_invalid(request, exc)  # type: ignore[misc]

    async def unreadable_form(request: Request, exc: Exception) -> Any:
        # A multipart body python-multipart itself cannot parse (a part's headers past its
        # limit, a broken boundary): Starlette answers 400 only for its own MultiPartException,
        # and this came through as a 500 from every page form, first read for its CSRF token.
        if _is_page(request) or _is_page_route(request):
            return render(request, "errors/error.html", {"message": BAD_REQUEST}, status_code=400)
        return JSONResponse({"error": f"the form could not be read: {exc}"}, status_code=400)

    app.add_exception_handler(FormParserError, unreadable_form)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(CsrfRefused, csrf_refused)
    app.add_exception_handler(PageForbidden, forbidden)
    app.add_exception_handler(CertflowError, domain_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
