"""The studio's email texts: each NL/EN template file edited as text, with the mail it
belongs to rendered on its sample data as the owner types; saved as a draft that changes no
mail, and deployed (every draft at once) as new versions the email service then writes from.
A syntax error or a variable the sample data lacks is shown and refuses the deploy. Process
owners only. The template store is a service (certflow.services.email_templates).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from certflow.clock import CLOCK
from certflow.engine.errors import NotFound
from certflow.engine.studio import ROLE
from certflow.errors import DraftConflict
from certflow.i18n import N_
from certflow.services import email_templates as store
from certflow.services.accounts import Account
from certflow.store.db import session_scope
from certflow.web.pages.deps import form_values, require_role
from certflow.web.pages.drafts import conflict_context, revision_of
from certflow.web.pages.rendering import redirect, render

router = APIRouter(prefix="/studio/emails")
Owner = Annotated[Account, Depends(require_role(ROLE))]


def _known(name: str) -> str:
    if name not in store.editable():
        raise NotFound(f"no email template {name!r}")
    return name


def _page(request: Request, name: str, content: str | None = None, problems: list[str] | None = None,
          status_code: int = 200, flash: str | None = None, refused: bool = False,
          revision: int | None = None, **extra: Any) -> Response:
    with session_scope() as session:
        space = store.text(session, _known(name))
        text = space.content if content is None else content
        preview = store.preview(session, name, text)
    return render(request, "studio/email.html", {
        "space": space, "name": name, "content": text, "preview": preview, "flash": flash,
        "problems": problems or [], "refused": refused,
        "revision": space.revision if revision is None else revision,
        "conflict": None, "reload_url": f"/studio/emails/edit/{name}", **extra}, status_code=status_code)


def _overview(request: Request, flash: str | None = None, problems: list[str] | None = None,
              status_code: int = 200, **extra: Any) -> Response:
    with session_scope() as session:
        found = store.overview(session)
        seen = store.drafts_seen(session)
    return render(request, "studio/emails.html", {
        "templates": found, "flash": flash, "problems": problems or [], "drafts_seen": seen, "conflict": None,
        "has_drafts": any(f["draft"] for t in found for f in t["files"]), **extra}, status_code=status_code)


@router.get("")
def emails(request: Request, user: Owner, deployed: str = "") -> Response:
    return _overview(request, N_("Deployed: mail is written from the new versions.") if deployed else None)


@router.get("/edit/{name:path}")
def edit(request: Request, name: str, user: Owner, saved: str = "") -> Response:
    return _page(request, name, flash=N_("Saved as a draft: no mail changes until it is deployed.")
                 if saved else None)


@router.post("/preview/{name:path}")
async def preview(request: Request, name: str, user: Owner) -> Response:
    content = (await form_values(request)).get("content", "")
    with session_scope() as session:
        shown = store.preview(session, _known(name), content)
    return render(request, "studio/_email_preview.html", {"preview": shown})


@router.post("/save/{name:path}")
async def save(request: Request, name: str, user: Owner) -> Response:
    values = await form_values(request)
    content, revision = values.get("content", ""), revision_of(values.get("revision"))
    try:
        with session_scope() as session:
            store.save_draft(session, _known(name), content, user.username, CLOCK.now(), revision)
    except store.TemplateRefused as exc:
        return _page(request, name, content, exc.problems, status_code=422, refused=True, revision=revision)
    except DraftConflict as exc:
        # Saved by someone else since the page was opened: the typed text stays in the editor,
        # theirs is shown, and the page now carries their revision (saving again replaces it).
        with session_scope() as session:
            saved = store.text(session, name).content
        return _page(request, name, content, status_code=409, saved_text=saved, **conflict_context(request, exc))
    return redirect(request, f"/studio/emails/edit/{name}?saved=1")


@router.post("/discard/{name:path}")
def discard(request: Request, name: str, user: Owner) -> Response:
    with session_scope() as session:
        store.discard_draft(session, _known(name))
    return redirect(request, f"/studio/emails/edit/{name}")


@router.post("/deploy")
async def deploy(request: Request, user: Owner) -> Response:
    """Deploy the drafts the page showed (its ``drafts`` field); a draft saved, added or
    removed since is a 409 that deploys nothing and shows the list as it is now."""
    seen = (await form_values(request)).get("drafts")
    try:
        with session_scope() as session:
            store.deploy(session, user.username, CLOCK.now(), seen)
    except store.TemplateRefused as exc:
        return _overview(request, problems=exc.problems, status_code=422)
    except DraftConflict as exc:
        return _overview(request, status_code=409, conflict_name=exc.name, **conflict_context(request, exc))
    return redirect(request, "/studio/emails?deployed=1")
