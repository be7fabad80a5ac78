"""The studio's form editor: a task's JSON Schema (``forms/<name>.json`` in the process's
draft) as text, with a live preview drawn by exactly the code the inbox task page uses
(``schema_forms.fields`` and ``macros/schema_form.html``), so what the process owner sees is
what the assignee will get.

Saving puts the form into the process's studio draft (nothing runs from it); only deploying
the draft makes a new process version that new tasks use. A schema that is not JSON, not a
JSON Schema, or not something the form renderer can draw is refused with the reason and the
draft is left as it was. Process owners only, like the rest of the studio.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from certflow.engine.errors import CertflowError, DeployError, NotFound
from certflow.errors import DraftConflict
from certflow.engine.studio import ROLE, Workspace
from certflow.engine.deploy import too_large
from certflow.i18n import Message, N_
from certflow.services.accounts import Account
from certflow.web import schema_forms
from certflow.web.json_bodies import MAX_JSON_DEPTH, json_depth_problem
from certflow.web.text_input import control_path
from certflow.web.deps import actor_of, get_engine
from certflow.web.pages.deps import form_values, require_role
from certflow.web.pages.drafts import conflict_context, revision_of
from certflow.web.pages.rendering import redirect, render

router = APIRouter(prefix="/studio")
Owner = Annotated[Account, Depends(require_role(ROLE))]
_FORM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}\.json$")
MAX_FORM_CHARS = 200_000


def schema_problems(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The schema, or why a task form cannot be made from ``text`` (each with where)."""
    if len(text) > MAX_FORM_CHARS:
        return None, [too_large(len(text), MAX_FORM_CHARS)]
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [Message(N_("not valid JSON: line %(line)s, column %(column)s: %(error)s"),
                              line=exc.lineno, column=exc.colno, error=exc.msg)]
    except RecursionError:  # the parser's own stack, some 100,000 levels down
        return None, [Message(N_("nested deeper than %(limit)s levels"), limit=MAX_JSON_DEPTH)]
    # A deep schema exhausts the stack of the schema check and of drawing the form (a 500).
    where = json_depth_problem(schema)
    if where is not None:
        return None, [Message(N_("nested deeper than %(limit)s levels (at %(where)s)"), limit=MAX_JSON_DEPTH,
                              where=where)]
    where = control_path(schema)
    if where is not None:
        return None, [Message(N_("a control character (such as \\u0000) or a lone surrogate (such as \\ud800) "
                                 "at %(where)s, which no form shows"), where=where)]
    if not isinstance(schema, dict):
        return None, [Message(N_("a form is a JSON object ({...}) with \"type\": \"object\" and its \"properties\""))]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = " → ".join(str(p) for p in exc.absolute_path) or Message(N_("(top)"))
        return None, [Message(N_("not a valid JSON Schema at %(where)s: %(error)s"), where=path, error=exc.message)]
    problems: list[str] = []
    if schema.get("type", "object") != "object":
        problems.append(Message(N_("a task form must be of type object, not %(type)s"), type=schema.get("type")))
    elif not isinstance(schema.get("properties", {}), dict):
        problems.append(Message(N_("\"properties\" must be an object of fields")))
    else:
        try:
            schema_forms.fields(schema, {}, {}, "nl")
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            problems.append(Message(N_("the form cannot be drawn: %(error)s"), error=str(exc)))
    return (None, problems) if problems else (schema, [])


def _form_name(space: Workspace, name: str) -> str:
    path = f"forms/{name}"
    if not _FORM_NAME.match(name) or path not in space.sources:
        raise NotFound(f"no form {name!r} in {space.process_id!r}")
    return path


def _preview(schema: dict[str, Any], language: str) -> dict[str, Any]:
    return {"fields": schema_forms.fields(schema, {}, {}, language),
            "form_title": schema_forms.pick(schema.get("title"), language),
            "form_intro": schema_forms.pick(schema.get("description"), language)}


def _page(request: Request, space: Workspace, name: str, text: str, language: str,
          problems: list[str], status_code: int = 200, **extra: Any) -> Response:
    schema, schema_errors = schema_problems(text)
    context = {"space": space, "name": name, "text": text, "preview_lang": language,
               "problems": problems, "schema_errors": schema_errors, "deploy_problems": [],
               "revision": space.revision, "conflict": None,
               "reload_url": f"/studio/{space.process_id}/forms/{name}",
               "preview": _preview(schema, language) if schema is not None else None, **extra}
    return render(request, "studio/form.html", context, status_code=status_code)


@router.get("/{process_id}/forms")
def forms(request: Request, process_id: str, user: Owner) -> Response:
    space = get_engine().workspace(actor_of(user), process_id)
    names = sorted(n.removeprefix("forms/") for n in space.sources if n.startswith("forms/"))
    return render(request, "studio/forms.html", {"space": space, "forms": names})


@router.get("/{process_id}/forms/{name}")
def form(request: Request, process_id: str, name: str, user: Owner, lang: str = "",
         saved: str = "", deployed: str = "") -> Response:
    space = get_engine().workspace(actor_of(user), process_id)
    path = _form_name(space, name)
    flash = (N_("Form saved in the draft. It goes live when the draft is deployed.") if saved else
             N_("Deployed as a new version: new tasks use this form.") if deployed else None)
    return _page(request, space, name, space.sources[path], lang if lang in ("nl", "en") else user.language,
                 [], flash=flash, deployed_version=deployed)


@router.post("/{process_id}/forms/{name}/preview")
async def preview(request: Request, process_id: str, name: str, user: Owner) -> Response:
    space = get_engine().workspace(actor_of(user), process_id)
    _form_name(space, name)
    values = await form_values(request)
    language = values.get("preview_lang", "nl")
    schema, errors = schema_problems(values.get("schema", ""))
    return render(request, "studio/_form_preview.html", {
        "schema_errors": errors, "preview_lang": language if language in ("nl", "en") else "nl",
        "preview": _preview(schema, language) if schema is not None else None})


@router.post("/{process_id}/forms/{name}")
async def save(request: Request, process_id: str, name: str, user: Owner) -> Response:
    engine, actor = get_engine(), actor_of(user)
    space = engine.workspace(actor, process_id)
    path = _form_name(space, name)
    values = await form_values(request)
    text, language = values.get("schema", ""), values.get("preview_lang", "")
    # Back into the page's address after saving: only a language the preview offers.
    language = language if language in ("nl", "en") else user.language
    revision = revision_of(values.get("revision"))
    schema, problems = schema_problems(text)
    if schema is None:
        return _page(request, space, name, text, language, problems, status_code=422, revision=revision)
    try:
        engine.save_draft(actor, process_id, {**space.sources, path: text}, space.base_version, revision)
    except DraftConflict as exc:
        return _conflict(request, user, space, name, path, text, language, exc)
    except DeployError as exc:
        return _page(request, space, name, text, language, [p.message for p in exc.problems], 422)
    return redirect(request, f"/studio/{process_id}/forms/{name}?saved=1&lang={language}")


@router.post("/{process_id}/forms/{name}/deploy")
async def deploy(request: Request, process_id: str, name: str, user: Owner) -> Response:
    """Deploy the draft, with the form as on screen: an unsaved change is saved first."""
    engine, actor = get_engine(), actor_of(user)
    space = engine.workspace(actor, process_id)
    path = _form_name(space, name)
    values = await form_values(request)
    text, revision = values.get("schema", space.sources[path]), revision_of(values.get("revision"))
    if text != space.sources[path]:
        schema, problems = schema_problems(text)
        if schema is None:
            return _page(request, space, name, text, user.language, problems, status_code=422, revision=revision)
    try:
        if text != space.sources[path]:
            space = engine.save_draft(actor, process_id, {**space.sources, path: text}, space.base_version,
                                      revision)
        elif revision is not None and revision != space.revision:
            # Unchanged here, but the draft moved on since this page was opened: deploying
            # now would deploy what the owner has not seen.
            raise DraftConflict(process_id, space.revision, space.saved_by, space.saved_at)
        done = engine.deploy_draft(actor, process_id, space.revision if space.is_draft else None)
    except DraftConflict as exc:
        return _conflict(request, user, space, name, path, text, user.language, exc)
    except DeployError as exc:
        return _page(request, engine.workspace(actor, process_id), name, text, user.language, [],
                     status_code=422, deploy_problems=exc.problems)
    except CertflowError as exc:
        return _page(request, space, name, text, user.language, [exc.message], 422)
    return redirect(request, f"/studio/{process_id}/forms/{name}?deployed={done.version}")


def _conflict(request: Request, user: Account, space: Workspace, name: str, path: str, text: str, language: str,
              exc: DraftConflict) -> Response:
    """409: someone saved the draft since this page was opened. The typed schema stays in the
    editor, their saved form is shown beside it, and the page now carries their revision, so
    saving again replaces their draft knowingly."""
    saved = get_engine().workspace(actor_of(user), space.process_id)
    return _page(request, saved, name, text, language, [], status_code=409,
                 saved_text=saved.sources.get(path), **conflict_context(request, exc))
