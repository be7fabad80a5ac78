"""The process owners' studio: the processes, the modeler (bpmn-js with certflow's own
properties panel, bundled from npm by ``make install``), drafts, the deploy check shown on the
diagram, deploy, and the version history with what changed.

The editor page loads its data as JSON from the routes below (``/studio/<process>/...``);
every one of them, pages and JSON alike, is for the ``process_owner`` role only. Everything a
draft may contain is decided by the engine facade (``certflow.engine.studio``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from certflow.engine.errors import CertflowError, DeployError, Problem
from certflow.engine.studio import ROLE, Workspace
from certflow.errors import DraftConflict
from certflow import i18n
from certflow.i18n import Message, N_
from certflow.services.accounts import ROLES, Account
from certflow.web.deps import PathId, actor_of, get_engine
from certflow.web.pages.deps import require_role, visitor_of
from certflow.web.pages.drafts import conflict_json, revision_of
from certflow.web.json_bodies import MAX_JSON_DEPTH, json_depth_problem
from certflow.web.pages.rendering import redirect, render
from certflow.web.pages.studio_words import studio_words
from certflow.web.text_input import TextRefused, control_path

router = APIRouter(prefix="/studio")
Owner = Annotated[Account, Depends(require_role(ROLE))]
MAX_UPLOAD_BYTES = 2_000_000


def _problems(problems: list[Problem], language: str) -> list[dict[str, Any]]:
    """The problems as the editor lists and marks them, each said in the owner's language (the
    file and element ids stay as they are)."""
    return [{"file": p.file, "element": p.element, "message": i18n.translate(language, p.message)}
            for p in problems]


def _refusal(request: Request, exc: CertflowError) -> JSONResponse:
    language = visitor_of(request).language
    problems = exc.problems if isinstance(exc, DeployError) else []
    return JSONResponse({"error": i18n.translate(language, exc.message), "problems": _problems(problems, language)},
                        status_code=exc.status)


async def _json(request: Request, empty: bytes = b"") -> Any:
    """The body as JSON; None when it is not JSON. Refused (422, JSON) when it nests past
    ``MAX_JSON_DEPTH`` (100,000 levels exhausted the parser's stack: a 500) or a string in it
    has a control character, which no process file takes."""
    try:
        body = json.loads(await request.body() or empty)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except RecursionError:
        raise _Refused(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    where = json_depth_problem(body)
    if where is not None:
        raise _Refused(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels (at {where})")
    where = control_path(body)
    if where is not None:
        raise _Refused(TextRefused(where).message)
    return body


class _Refused(Exception):
    """A studio JSON call's body refused before it is read as sources (422)."""


async def _body(request: Request) -> tuple[dict[str, str], int | None] | JSONResponse:
    """The editor's ``{"sources": {path: text}, "revision": n}``, or the 422 saying so."""
    try:
        body = await _json(request)
    except _Refused as exc:
        return JSONResponse({"error": str(exc), "problems": []}, status_code=422)
    sources = body.get("sources") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(sources, dict) or not all(isinstance(k, str) for k in sources):
        return JSONResponse({"error": "expected {\"sources\": {path: text}}", "problems": []}, status_code=422)
    return sources, revision_of(body.get("revision"))


@router.get("")
def processes(request: Request, user: Owner) -> Response:
    found = get_engine().studio_processes(actor_of(user))
    return render(request, "studio/index.html", {"processes": found})


@router.get("/handlers.json")
def handlers(request: Request, user: Owner) -> JSONResponse:
    """The handlers the panel offers, described in the owner's language."""
    catalogue = get_engine().handler_catalogue(actor_of(user))
    language = visitor_of(request).language

    def words(text: str) -> str:
        return i18n.gettext(language, text) if text else ""  # "" would be the catalogue's header

    for operator in catalogue["operators"]:
        operator["description"] = words(operator["description"])
        for parameter in operator["parameters"]:
            parameter["description"] = words(parameter["description"])
    return JSONResponse(catalogue)


@router.post("/condition")
async def condition(request: Request, user: Owner) -> JSONResponse:
    """Whether ``{"expression": text}`` would run as a flow's condition: ``{"problem": null}``,
    or its kind (``syntax``, ``refused``) and the details deploy would report."""
    try:
        body = await _json(request)
    except _Refused as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    expression = body.get("expression") if isinstance(body, dict) else None
    if not isinstance(expression, str):
        return JSONResponse({"error": "expected {\"expression\": text}"}, status_code=422)
    found = get_engine().condition_problem(actor_of(user), expression)
    language = visitor_of(request).language
    return JSONResponse({"problem": found and {"kind": found.kind, "detail": i18n.translate(language, found.detail),
                                               "message": i18n.translate(language, found.message)}})


@router.get("/{process_id}")
def editor(request: Request, process_id: str, user: Owner, saved: str = "", restored: str = "") -> Response:
    flash = N_("The version has been restored as the draft.") if restored else \
        (N_("The diagram has been uploaded as the draft.") if saved else None)
    return _editor(request, get_engine().workspace(actor_of(user), process_id), flash=flash)


def _editor(request: Request, space: Workspace, flash: str | None = None,
            upload_problems: list[Problem] | None = None, status_code: int = 200) -> Response:
    """The modeler page (its data it fetches itself from workspace.json and handlers.json)."""
    return render(request, "studio/editor.html", {"space": space, "flash": flash, "groups": list(ROLES),
                                                  "upload_problems": upload_problems or [],
                                                  "words": studio_words(visitor_of(request).language)},
                  status_code=status_code)


@router.get("/{process_id}/workspace.json")
def workspace(process_id: str, user: Owner) -> JSONResponse:
    space = get_engine().workspace(actor_of(user), process_id)
    return JSONResponse({
        "process_id": space.process_id, "sources": space.sources, "base_version": space.base_version,
        "is_draft": space.is_draft, "saved_by": space.saved_by, "revision": space.revision,
        "saved_at": space.saved_at.isoformat() if space.saved_at else None,
        "bpmn_file": next((n for n in sorted(space.sources) if n.endswith(".bpmn")), None),
        "forms": sorted(n.removeprefix("forms/") for n in space.sources if n.startswith("forms/")),
    })


@router.post("/{process_id}/draft")
async def save_draft(request: Request, process_id: str, user: Owner) -> JSONResponse:
    """Save the editor's sources as the draft, if the draft is still the revision it loaded."""
    return await _with_sources(request, lambda sources, revision: _saved(get_engine().save_draft(
        actor_of(user), process_id, sources, revision=revision)))


@router.post("/{process_id}/check")
async def check(request: Request, process_id: str, user: Owner) -> JSONResponse:
    language = visitor_of(request).language
    return await _with_sources(request, lambda sources, _: {"problems": _problems(
        get_engine().check_sources(actor_of(user), process_id, sources), language)})


@router.post("/{process_id}/changes")
async def changes(request: Request, process_id: str, user: Owner) -> Response:
    """What deploying these sources would change against the newest deployed version (the
    versions page's summary), shown for the owner to confirm before deploying."""
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    try:
        change = get_engine().draft_changes(actor_of(user), process_id, body[0])
    except CertflowError as exc:
        return _refusal(request, exc)
    return render(request, "studio/_changes.html", {"change": change, "process_id": process_id})


async def _with_sources(request: Request, action: Callable[[dict[str, str], int | None], dict[str, Any]]
                        ) -> JSONResponse:
    """The two JSON routes that take the editor's sources: read them, act, answer or refuse."""
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    try:
        return JSONResponse(action(*body))
    except DraftConflict as exc:
        return conflict_json(request, exc)
    except CertflowError as exc:
        return _refusal(request, exc)


def _saved(space: Workspace) -> dict[str, Any]:
    return {"saved_by": space.saved_by, "saved_at": space.saved_at.isoformat() if space.saved_at else None,
            "revision": space.revision}


@router.post("/{process_id}/deploy")
async def deploy(request: Request, process_id: str, user: Owner) -> JSONResponse:
    """Deploy the draft; with ``{"revision": n}`` only if the draft is still that revision (the
    one whose changes the owner confirmed)."""
    try:
        body = await _json(request, b"{}")
    except _Refused as exc:
        return JSONResponse({"error": str(exc), "problems": []}, status_code=422)
    revision = revision_of(body.get("revision")) if isinstance(body, dict) else None
    try:
        done = get_engine().deploy_draft(actor_of(user), process_id, revision=revision)
    except DraftConflict as exc:
        return conflict_json(request, exc)
    except CertflowError as exc:
        return _refusal(request, exc)
    return JSONResponse({"process_id": done.process_id, "version": done.version, "created": done.created})


@router.post("/{process_id}/discard")
def discard(request: Request, process_id: str, user: Owner) -> Response:
    get_engine().discard_draft(actor_of(user), process_id)
    return redirect(request, f"/studio/{process_id}")


@router.post("/{process_id}/upload")
async def upload(request: Request, process_id: str, user: Owner, diagram: UploadFile) -> Response:
    data = await diagram.read(MAX_UPLOAD_BYTES + 1)
    space = get_engine().workspace(actor_of(user), process_id)
    problems: list[Problem] = []
    if len(data) > MAX_UPLOAD_BYTES:
        problems = [Problem(diagram.filename or "upload", None,
                            Message(N_("too large (more than %(limit)s bytes)"), limit=f"{MAX_UPLOAD_BYTES:,}"))]
    else:
        try:
            get_engine().upload_diagram(actor_of(user), process_id, data.decode("utf-8"))
        except UnicodeDecodeError:
            problems = [Problem(diagram.filename or "upload", None, Message(N_("not UTF-8 text")))]
        except DeployError as exc:
            problems = exc.problems
    if problems:
        return _editor(request, space, upload_problems=problems, status_code=422)
    return redirect(request, f"/studio/{process_id}?saved=1")


@router.get("/{process_id}/versions")
def versions(request: Request, process_id: str, user: Owner) -> Response:
    found = get_engine().versions(actor_of(user), process_id)
    return render(request, "studio/versions.html", {"process_id": process_id, "versions": found})


@router.get("/{process_id}/versions/{version}.bpmn")
def download(process_id: str, version: PathId, user: Owner) -> Response:
    sources = get_engine().version_sources(actor_of(user), process_id, version)
    name = next((n for n in sorted(sources) if n.endswith(".bpmn")), None)
    if name is None:
        return Response(status_code=404)
    return Response(sources[name], media_type="application/xml", headers={
        "Content-Disposition": f'attachment; filename="{process_id}_v{version}.bpmn"'})


@router.post("/{process_id}/versions/{version}/restore")
def restore(request: Request, process_id: str, version: PathId, user: Owner) -> Response:
    get_engine().restore_version(actor_of(user), process_id, version)
    return redirect(request, f"/studio/{process_id}?restored=1")
