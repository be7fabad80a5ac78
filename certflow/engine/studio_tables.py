"""The studio's fee and VAT tables (``processes/shared/fees.dmn``, ``vat.dmn``): drafts kept on
the server, the checks ``certflow deploy`` applies to them, and deploy as the next
``SharedTable`` version, which is what invoices are priced from.

Process owners only. The checks are the registry's shared checks (the billing service's
effective-date rules: no overlaps, no gaps, a VAT rate for every fee's whole period), run on a
copy of ``processes/shared`` with the tables as they would be live: the drafts where there are
drafts, the deployed versions otherwise. Deploy takes every table draft at once, so a fee that
needs a new VAT category goes live together with it, or not at all.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.clock import CLOCK
from certflow.engine import deploy as deploying
from certflow.engine import table_diff
from certflow.engine.dto import DeployedVersion
from certflow.engine.errors import DeployError, NotFound, Problem
from certflow.engine.studio import studio_only
from certflow.engine.table_diff import TableDiff
from certflow.i18n import Message, N_
from certflow.store.models import SharedTable
from certflow.store.studio import save_into
from certflow.store.studio_texts import StudioSharedDraft

if TYPE_CHECKING:
    from certflow.engine.facade import Actor

TABLES = deploying.SHARED_TABLES
MAX_TABLE_CHARS = 1_000_000
DMN_NS = "omg.org/spec/DMN/"
_LEADING_COMMENT = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->)", re.S)


@dataclass(frozen=True)
class TableSpace:
    """A table as the editor opens it: the draft when there is one, else the live version."""

    name: str
    content: str
    version: int | None  # the live SharedTable version (None: only the file so far)
    is_draft: bool
    saved_by: str | None
    saved_at: datetime | None
    revision: int = 0  # what a save must carry back (0: no draft)


def table_problems(name: str, content: str) -> list[Problem]:
    """Why ``content`` cannot even be kept as a draft of table ``name``."""
    if name not in TABLES:
        return [Problem(name, None, Message(N_("not a shared table (known: %(known)s)"), known=", ".join(TABLES)))]
    if len(content) > MAX_TABLE_CHARS:
        return [Problem(name, None, deploying.too_large(len(content), MAX_TABLE_CHARS))]
    try:
        root = deploying.read_xml(None, content)
    except (etree.XMLSyntaxError, ValueError) as exc:
        return [Problem(name, None, deploying.not_xml(exc))]
    if etree.QName(root).localname != "definitions" or DMN_NS not in (etree.QName(root).namespace or ""):
        return [Problem(name, None, Message(N_("not a DMN file (expected a DMN <definitions> root element)")))]
    return []


def keep_comment(old: str, new: str) -> str:
    """The table editor writes the XML anew and drops comments; the leading comment is the
    table's manual for the next owner, so it is carried over when the new text has none."""
    found = _LEADING_COMMENT.match(old)
    if found is None or _LEADING_COMMENT.match(new):
        return new
    declaration = re.match(r"^\s*<\?xml[^>]*\?>\s*", new)
    head = declaration.group(0) if declaration else ""
    return f"{head.rstrip()}\n{found.group(2)}\n{new[len(head):].lstrip()}" if head else f"{found.group(2)}\n{new}"


def _live(session: Session, name: str) -> SharedTable | None:
    return session.scalars(select(SharedTable).where(SharedTable.name == name)
                           .order_by(SharedTable.version.desc()).limit(1)).first()


class TableStudioMixin:
    """Mixed into ``Engine`` (needs ``session()``, ``settings``, ``registry``)."""

    settings: Any
    registry: Any
    session: Any

    def _live_content(self, session: Session, name: str) -> tuple[str, int | None]:
        row = _live(session, name)
        if row is not None:
            return row.content, row.version
        return (Path(self.settings.processes_dir) / "shared" / name).read_text(encoding="utf-8"), None

    def _space(self, session: Session, name: str) -> TableSpace:
        if name not in TABLES:
            raise NotFound(f"no shared table {name!r}")
        content, version = self._live_content(session, name)
        draft = session.get(StudioSharedDraft, name)
        if draft is not None:
            return TableSpace(name, draft.content, version, True, draft.saved_by, draft.saved_at, draft.revision)
        return TableSpace(name, content, version, False, None, None)

    def _contents(self, session: Session, edited: dict[str, str] | None) -> dict[str, str]:
        return {name: (edited or {}).get(name) or self._space(session, name).content for name in TABLES}

    def table_space(self, actor: "Actor", name: str) -> TableSpace:
        studio_only(actor)
        with self.session() as session:
            return self._space(session, name)

    def table_contents(self, actor: "Actor", edited: dict[str, str] | None = None) -> dict[str, str]:
        """Both tables as they would go live: ``edited`` first, then drafts, then live."""
        studio_only(actor)
        with self.session() as session:
            return self._contents(session, edited)

    def save_table_draft(self, actor: "Actor", name: str, content: str,
                         revision: int | None = None) -> TableSpace:
        """Keep ``content`` as the table's draft. Refused (DeployError, nothing saved) when it is
        not a DMN file at all; the effective-date rules are the check's to report. With the
        ``revision`` the editor loaded: DraftConflict if the draft was saved since."""
        studio_only(actor)
        problems = table_problems(name, content)
        if problems:
            raise DeployError(problems)
        with self.session() as session:
            live, version = self._live_content(session, name)
            now = CLOCK.now()

            def fill(draft: StudioSharedDraft) -> None:
                draft.content = keep_comment(draft.content or live, content)
                draft.base_version, draft.saved_by, draft.saved_at = version, actor.username, now

            draft = save_into(session, StudioSharedDraft, name, revision, name, fill)
            return TableSpace(name, draft.content, version, True, actor.username, now, draft.revision)

    def discard_table_draft(self, actor: "Actor", name: str) -> None:
        studio_only(actor)
        with self.session() as session:
            draft = session.get(StudioSharedDraft, name)
            if draft is not None and name in TABLES:
                session.delete(draft)

    def check_tables(self, actor: "Actor", edited: dict[str, str] | None = None) -> list[Problem]:
        """Everything ``certflow deploy`` would report about the tables as they would go live."""
        return self._check(self.table_contents(actor, edited))

    def _check(self, contents: dict[str, str]) -> list[Problem]:
        problems = [p for name, text in contents.items() for p in table_problems(name, text)]
        return problems or self._shared_checks(contents)

    def _shared_checks(self, contents: dict[str, str]) -> list[Problem]:
        shared = Path(self.settings.processes_dir) / "shared"
        with tempfile.TemporaryDirectory(prefix="certflow-tables-") as tmp:
            copy = Path(tmp) / "shared"
            shutil.copytree(shared, copy)
            for name, text in contents.items():
                (copy / name).write_text(text, encoding="utf-8")
            return deploying.shared_problems(Path(tmp), self.registry)

    def deploy_tables(self, actor: "Actor") -> list[DeployedVersion]:
        """Every table draft as the table's next version, all or none; drafts gone after."""
        studio_only(actor)
        with self.session() as session:
            # Locked: a second deploy at once (a double click) waits, then finds no draft.
            drafts = {d.name: d for d in session.scalars(select(StudioSharedDraft).where(
                StudioSharedDraft.name.in_(TABLES)).with_for_update())}
            if not drafts:
                raise NotFound(Message(N_("no fee or VAT table draft to deploy")))
            problems = self._check(self._contents(session, None))
            if problems:
                raise DeployError(problems)
            done = [deploying.store_shared_table(session, name, draft.content, actor.username) for name, draft in sorted(drafts.items())]
            for draft in drafts.values():
                session.delete(draft)
            return done

    def table_changes(self, actor: "Actor", edited: dict[str, str] | None = None) -> dict[str, TableDiff]:
        """What deploying would change, per table with a draft (or an ``edited`` text): its
        rows against the live version. Tables that would not change are left out."""
        studio_only(actor)
        with self.session() as session:
            drafted = set(session.scalars(select(StudioSharedDraft.name).where(StudioSharedDraft.name.in_(TABLES))))
            found = {}
            for name in TABLES:
                if name not in drafted and name not in (edited or {}):
                    continue
                change = table_diff.diff(self._live_content(session, name)[0],
                                         (edited or {}).get(name) or self._space(session, name).content)
                if not change.empty:
                    found[name] = change
            return found

    def compare_table_versions(self, actor: "Actor", name: str, old: int, new: int) -> TableDiff:
        """Rows added, removed and changed from version ``old`` to version ``new`` of a table."""
        studio_only(actor)
        with self.session() as session:
            texts = []
            for version in (old, new):
                row = session.scalars(select(SharedTable).where(SharedTable.name == name,
                                                                SharedTable.version == version)).first()
                if row is None:
                    raise NotFound(f"no version {version} of {name!r}")
                texts.append(row.content)
            return table_diff.diff(texts[0], texts[1])

    def table_versions(self, actor: "Actor", name: str) -> list[dict[str, Any]]:
        studio_only(actor)
        with self.session() as session:
            rows = session.scalars(select(SharedTable).where(SharedTable.name == name)
                                   .order_by(SharedTable.version.desc()))
            return [{"version": r.version, "deployed_at": r.deployed_at, "deployed_by": r.deployed_by}
                    for r in rows]
