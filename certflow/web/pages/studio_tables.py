"""The studio's fee and VAT tables: the dmn-js decision table editor (npm ``dmn-js``, served
from node_modules) on the draft of ``fees.dmn`` or ``vat.dmn``, the checks deploy applies,
and an invoice preview ("what would a first certification invoice be on 2027-01-01") priced
by the billing service's own lookup from the tables as edited, not as live.

The editor writes the table's XML into the page's form on every change, so saving, checking
and the preview all send exactly what is on screen; without JavaScript the XML itself can be
edited. Deploying creates the next ``SharedTable`` version of every table with a draft.
Process owners only.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from certflow.engine.errors import CertflowError, DeployError, NotFound, Problem
from certflow.engine.studio import ROLE
from certflow.engine.studio_tables import TABLES
from certflow.errors import DraftConflict
from certflow.i18n import Message, N_
from certflow.services.accounts import Account
from certflow.services.billing import fees, totals
from certflow.web.deps import QueryId, actor_of, get_engine
from certflow.web.pages.deps import form_values, require_role
from certflow.web.pages.drafts import conflict_context, revision_of
from certflow.web.pages.rendering import redirect, render

router = APIRouter(prefix="/studio/shared")
Owner = Annotated[Account, Depends(require_role(ROLE))]
SAMPLE_PRODUCT = "certification"
SAMPLE_DATE = "2027-01-01"


def _table(name: str) -> str:
    if name not in TABLES:
        raise NotFound(f"no shared table {name!r}")
    return name


def invoice_preview(contents: dict[str, str], product: str, on: str) -> dict[str, Any]:
    """One invoice line for ``product`` on day ``on``, priced from ``contents`` (the tables as
    edited) by the billing service; or the reasons it cannot be priced."""
    try:
        day = date.fromisoformat(on)
    except ValueError:
        return {"problems": [Message(N_("not a date: %(text)r (expected YYYY-MM-DD)"), text=on)], "products": []}
    with tempfile.TemporaryDirectory(prefix="certflow-preview-") as tmp:
        for name, text in contents.items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        try:
            tables = fees.load_tables(Path(tmp))
        except fees.FeeTableError as exc:
            return {"problems": exc.problems, "products": []}
    products = sorted(tables.products)
    try:
        price = tables.price(product, day)
    except fees.NoPriceError as exc:
        return {"problems": [exc.args[0] if len(exc.args) == 1 else str(exc)], "products": products}
    line = totals.price_line(price, 1)
    # A priced line has every field an invoice line has; the protocol only asks them settable.
    sums = totals.totals([cast(totals.LineLike, line)])
    return {"problems": [], "products": products, "product": product, "day": day, "price": price,
            "net": sums.net, "vat": sums.vat, "gross": sums.gross, "rate": price.vat_rate}


def _page(request: Request, user: Account, name: str, content: str | None = None,
          problems: list[Problem] | None = None, checked: bool = False, status_code: int = 200,
          flash: str | None = None, revision: int | None = None, **extra: Any) -> Response:
    engine, actor = get_engine(), actor_of(user)
    space = engine.table_space(actor, name)
    text = space.content if content is None else content
    contents = engine.table_contents(actor, {name: text})
    return render(request, "studio/table.html", {
        "space": space, "name": name, "content": text, "problems": problems or [], "checked": checked,
        "tables": TABLES, "flash": flash, "product": SAMPLE_PRODUCT, "on": SAMPLE_DATE,
        "invoice": invoice_preview(contents, SAMPLE_PRODUCT, SAMPLE_DATE),
        "history": engine.table_versions(actor, name),
        "revision": space.revision if revision is None else revision,
        "conflict": None, "reload_url": f"/studio/shared/{name}", **extra,
    }, status_code=status_code)


def _conflict(request: Request, user: Account, name: str, content: str, exc: DraftConflict) -> Response:
    """409: saved by someone else since this page was opened; the typed table stays in the
    editor, theirs is shown, and the page now carries their revision (saving again replaces it)."""
    saved = get_engine().table_space(actor_of(user), name)
    return _page(request, user, name, content, status_code=409, saved_text=saved.content,
                 **conflict_context(request, exc))


@router.get("/{name}")
def table(request: Request, name: str, user: Owner, saved: str = "", deployed: str = "") -> Response:
    flash = (N_("Table saved as a draft. Invoices use it once it is deployed.") if saved else
             N_("Deployed: new invoices are priced from the new version.") if deployed else None)
    return _page(request, user, _table(name), flash=flash)


@router.post("/{name}")
async def save(request: Request, name: str, user: Owner) -> Response:
    values = await form_values(request)
    content, revision = values.get("content", ""), revision_of(values.get("revision"))
    try:
        get_engine().save_table_draft(actor_of(user), _table(name), content, revision)
    except DraftConflict as exc:
        return _conflict(request, user, name, content, exc)
    except DeployError as exc:
        return _page(request, user, name, content, exc.problems, status_code=422, revision=revision)
    return redirect(request, f"/studio/shared/{name}?saved=1")


@router.post("/{name}/check")
async def check(request: Request, name: str, user: Owner) -> Response:
    values = await form_values(request)
    content = values.get("content", "")
    problems = get_engine().check_tables(actor_of(user), {_table(name): content})
    return _page(request, user, name, content, problems, checked=True,
                 status_code=422 if problems else 200, revision=revision_of(values.get("revision")))


@router.post("/{name}/preview")
async def preview(request: Request, name: str, user: Owner) -> Response:
    values = await form_values(request)
    contents = get_engine().table_contents(actor_of(user), {_table(name): values.get("content", "")})
    product, on = values.get("product", "").strip(), values.get("on", "").strip()
    return render(request, "studio/_invoice_preview.html", {
        "invoice": invoice_preview(contents, product, on), "product": product, "on": on})


@router.post("/{name}/discard")
def discard(request: Request, name: str, user: Owner) -> Response:
    get_engine().discard_table_draft(actor_of(user), _table(name))
    return redirect(request, f"/studio/shared/{name}")


@router.post("/{name}/deploy/review")
async def review(request: Request, name: str, user: Owner) -> Response:
    """Before deploying: the rows each table's deploy changes against its live version, with
    the table as on screen; deploying is one more click from there. Problems go back to the
    table page, as the deploy would refuse them anyway."""
    engine, actor = get_engine(), actor_of(user)
    values = await form_values(request)
    content, revision = values.get("content", ""), revision_of(values.get("revision"))
    problems = engine.check_tables(actor, {_table(name): content})
    if problems:
        return _page(request, user, name, content, problems, checked=True, status_code=422, revision=revision)
    return render(request, "studio/table_deploy.html", {
        "name": name, "content": content, "revision": revision,
        "changes": engine.table_changes(actor, {name: content})})


@router.get("/{name}/versions")
def versions(request: Request, name: str, user: Owner, old: QueryId = None, new: QueryId = None) -> Response:
    """Every deployed version of the table, and two of them compared row by row (by default
    the newest against the one before)."""
    engine, actor = get_engine(), actor_of(user)
    history = engine.table_versions(actor, _table(name))
    if len(history) >= 2 and old is None and new is None:
        new, old = history[0]["version"], history[1]["version"]
    change = engine.compare_table_versions(actor, name, old, new) if old is not None and new is not None else None
    return render(request, "studio/table_versions.html", {
        "name": name, "history": history, "old": old, "new": new, "change": change})


@router.post("/{name}/deploy")
async def deploy(request: Request, name: str, user: Owner) -> Response:
    """Deploy every table draft, with this table as on screen: an unsaved change is saved first."""
    engine, actor = get_engine(), actor_of(user)
    values = await form_values(request)
    content, revision = values.get("content"), revision_of(values.get("revision"))
    try:
        space = engine.table_space(actor, _table(name))
        if content is not None and content != space.content:
            problems = engine.check_tables(actor, {name: content})  # refused: nothing saved either
            if problems:
                raise DeployError(problems)
            engine.save_table_draft(actor, name, content, revision)
        elif revision is not None and revision != space.revision:
            # Unchanged here, but the draft moved on since the page was opened: deploying now
            # would deploy a table the owner has not seen.
            raise DraftConflict(name, space.revision, space.saved_by, space.saved_at)
        done = engine.deploy_tables(actor)
    except DraftConflict as exc:
        return _conflict(request, user, name, content or "", exc)
    except DeployError as exc:
        return _page(request, user, _table(name), content, problems=exc.problems, checked=True,
                     status_code=422, revision=revision)
    except CertflowError as exc:
        return _page(request, user, _table(name), problems=[Problem(name, None, exc.message)],
                     checked=True, status_code=422, revision=revision)
    versions = ",".join(f"{d.process_id.removeprefix('shared/')}:{d.version}" for d in done)
    return redirect(request, f"/studio/shared/{name}?deployed={versions}")
