"""Rendering pages: one Jinja2 environment per language (gettext installed), the filters,
and ``render()`` which every page route returns through."""

from __future__ import annotations

from functools import lru_cache
from numbers import Number
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape as markup_escape

from certflow import i18n
from certflow.services.accounts import ROLE_LABELS
from certflow.web.pages import formats, labels
from certflow.web import schema_forms

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
    catalogue = i18n.translations(language)
    env.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(_direct_gettext(catalogue))
    # Filters are bound to the environment's language, so imported macros need no context.
    env.filters.update(
        date=lambda value: formats.long_date(value, language),
        datetime=lambda value: formats.date_time(value, language),
        money=lambda value: formats.money(value, language),
        fours=formats.in_fours,
        # Translate a string made elsewhere (marked with N_), e.g. a service's error message.
        t=lambda value: i18n.translate(language, value, labels.PARAM_WORDS) if value else "",
        # Codes in words (labels.py): a process id, a group, who works on a step.
        process=lambda value: i18n.gettext(language, labels.process_label(value)),
        group=lambda value: i18n.gettext(language, labels.group_label(value)),
        who=lambda value: i18n.gettext(language, labels.group_who(value)),
        # A task's title in the page's language (diagrams name tasks in Dutch; see task_title).
        task=lambda value: task_title(value, language),
    )
    env.globals.update(LANGUAGES=i18n.LANGUAGES, LANGUAGE_NAMES=i18n.LANGUAGE_NAMES,
                       ROLE_LABELS=ROLE_LABELS)
    return env


def task_title(task: Any, language: str) -> str:
    """A diagram names its tasks in Dutch. An English page shows the English name the diagram
    gives the task (property ``name_en``: where the name says more than the form's title, as
    "Dossier beoordelen (beoordelaar 1)" does), else its form title's English half: forms are
    titled "Nederlands / English", the Dutch half the task's name; otherwise the name as it is."""
    if language == "en" and getattr(task, "title_en", None):
        return str(task.title_en)
    title = ((getattr(task, "form_schema", None) or {}).get("title") or "")
    if " / " in title and schema_forms.pick(title, "nl") == task.title:
        return schema_forms.pick(title, language)
    return str(task.title)


def _direct_gettext(catalogue: i18n.NullTranslations) -> dict[str, Any]:
    """``_``, ``gettext`` and ``ngettext`` for the templates, as the i18n extension's newstyle
    ones (the text through the catalogue, its parameters filled in, escaped where the template
    escapes), called directly: the extension's go through two more of Jinja's context calls
    each, and a page of 50 tasks makes some 190 of them (a fifth of rendering the inbox)."""

    @pass_eval_context
    def gettext(eval_ctx: EvalContext, text: str, /, **variables: Any) -> str:
        return _filled(catalogue.gettext(text), variables, eval_ctx.autoescape)

    @pass_eval_context
    def ngettext(eval_ctx: EvalContext, singular: str, plural: str, num: int, /, **variables: Any) -> str:
        variables.setdefault("num", num)
        return _filled(catalogue.ngettext(singular, plural, num), variables, eval_ctx.autoescape)

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


def _filled(text: str, variables: dict[str, Any], escape: bool) -> str:
    """``text`` with ``variables`` filled in (escaped when ``escape``), and "%%" written as "%"
    as any translated text is, with values or not: what Markup's ``%`` does, whose escaping
    helper per value was three quarters of a translation. A number is put in as it is (it
    needs no escaping, and ``%(n)d`` wants a number)."""
    if not escape:
        return text % variables
    if not variables:
        return Markup(text.replace("%%", "%") if "%" in text else text)
    return Markup(text % {name: value if isinstance(value, Number) else markup_escape(value)
                          for name, value in variables.items()})


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
