"""Rendering pages: one Jinja2 environment per language (gettext installed), the filters,
and ``render()`` which every page route returns through."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from certflow import i18n
from certflow.services.accounts import ROLE_LABELS
from certflow.web.pages import formats, labels

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=len(i18n.LANGUAGES))
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html",)),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    # Filters are bound to the environment's language, so imported macros need no context.
    env.filters.update(
        date=lambda value: formats.long_date(value, language),
        datetime=lambda value: formats.date_time(value, language),
        money=lambda value: formats.money(value, language),
        # Translate a string made elsewhere (marked with N_), e.g. a service's error message.
        t=lambda value: i18n.translate(language, value, labels.PARAM_WORDS) if value else "",
        # Codes in words (labels.py): a process id, a group, who works on a step.
        process=lambda value: i18n.gettext(language, labels.process_label(value)),
        group=lambda value: i18n.gettext(language, labels.group_label(value)),
        who=lambda value: i18n.gettext(language, labels.group_who(value)),
    )
    env.globals.update(LANGUAGES=i18n.LANGUAGES, LANGUAGE_NAMES=i18n.LANGUAGE_NAMES,
                       ROLE_LABELS=ROLE_LABELS)
    return env


def render(request: Request, template: str, context: dict[str, Any] | None = None,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """Render ``template`` in the visitor's language. Every template sees ``visitor``
    (account or None, language, CSRF token), ``lang``, ``nav`` (the menu for this person),
    ``request`` and ``path``, besides ``context``."""
    from certflow.web.pages.deps import visitor_of
    from certflow.web.pages.nav import menu

    visitor = visitor_of(request)
    values = {"request": request, "visitor": visitor, "lang": visitor.language,
              "nav": menu(visitor.account, request), "path": request.url.path,
              "csrf_token": visitor.csrf_token, "errors": {}, "values": {}, "flash": None,
              **(context or {})}
    html = environment(visitor.language).get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    visitor.apply_cookies(request, response)
    return response


def redirect(request: Request, url: str, status_code: int = 303) -> Response:
    """Post/redirect/get; for htmx requests an ``HX-Redirect`` so the whole page moves."""
    from certflow.web.pages.deps import visitor_of

    if request.headers.get("HX-Request"):
        response: Response = Response(status_code=200, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=status_code)
    visitor_of(request).apply_cookies(request, response)
    return response
