"""The email texts as process owners edit them in the studio: drafts, a preview rendered on
each template's sample data, and deploy as a new version of every changed file.

Live mail is written from the latest deployed version of a file (``email_templates`` rows,
read by certflow.services.email); a file never deployed from the studio is its own version 0.
A draft changes no mail. Deploy renders every template in both languages with its samples,
drafts included, exactly as ``check_templates`` does at ``certflow deploy``: a syntax error or
a variable the sample data does not have refuses the deploy and nothing is stored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import TemplateSyntaxError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from certflow.errors import DraftConflict
from certflow.i18n import Message, N_
from certflow.services import email
from certflow.store.studio import save_into
from certflow.store.studio_texts import EmailTemplate, StudioSharedDraft

DRAFT_PREFIX = "email/"
MAX_TEMPLATE_CHARS = 100_000
_FILE = re.compile(r"^([a-z0-9_]+/)*[a-z0-9][a-z0-9_]*\.(nl|en)\.(txt|html)$")


class TemplateRefused(ValueError):
    """A template text that cannot be kept or deployed; ``problems`` says why, each a line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TemplateText:
    name: str  # "certification/application_received.nl.txt"
    content: str
    version: int  # the live version (0: the file)
    is_draft: bool
    saved_by: str | None
    saved_at: datetime | None
    revision: int = 0  # what a save must carry back (0: no draft)


@dataclass(frozen=True)
class Preview:
    subject: str
    text: str
    html: str
    language: str
    problems: list[str]
    kind: str = "txt"  # the file edited: "txt" (subject and plain text) or "html"


def editable() -> list[str]:
    """Every template file a process owner may edit (partials such as the signature are not
    listed: a change there would change every mail at once)."""
    root = email.TEMPLATE_DIR
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*.*")
                  if _FILE.match(p.relative_to(root).as_posix()))


def _known(name: str) -> str:
    if not _FILE.match(name) or name not in editable():
        raise LookupError(f"no email template {name!r}")
    return name


def _drafts(session: Session, lock: bool = False) -> dict[str, StudioSharedDraft]:
    """``lock``: for a deploy. A second deploy at once (a double click) waits for the first,
    then finds the drafts gone, instead of numbering the same next versions (a 500)."""
    query = select(StudioSharedDraft).where(StudioSharedDraft.name.startswith(DRAFT_PREFIX))
    rows = session.scalars(query.with_for_update() if lock else query)
    return {r.name.removeprefix(DRAFT_PREFIX): r for r in rows}


def _live(session: Session, name: str) -> tuple[str, int]:
    row = session.scalars(select(EmailTemplate).where(EmailTemplate.name == name)
                          .order_by(EmailTemplate.version.desc()).limit(1)).first()
    if row is not None:
        return row.content, row.version
    return (email.TEMPLATE_DIR / name).read_text(encoding="utf-8"), 0


def text(session: Session, name: str) -> TemplateText:
    """The draft when there is one, else the live text."""
    content, version = _live(session, _known(name))
    draft = _drafts(session).get(name)
    if draft is not None:
        return TemplateText(name, draft.content, version, True, draft.saved_by, draft.saved_at, draft.revision)
    return TemplateText(name, content, version, False, None, None)


def overview(session: Session) -> list[dict[str, Any]]:
    """Per mail (``certification/granted``) its files: NL and EN, plain text and HTML."""
    drafts = _drafts(session)
    versions = dict(session.execute(select(EmailTemplate.name, func.max(EmailTemplate.version))
                                    .group_by(EmailTemplate.name)).tuples().all())
    mails: dict[str, list[dict[str, Any]]] = {}
    for n in editable():
        template, language, kind = n.rsplit(".", 2)
        mails.setdefault(template, []).append({"name": n, "language": language, "kind": kind,
                                               "version": versions.get(n, 0), "draft": drafts.get(n)})
    return [{"template": t, "files": sorted(files, key=lambda f: (f["language"] != "nl", f["kind"] != "txt"))}
            for t, files in sorted(mails.items())]


def syntax_problems(name: str, content: str) -> list[str]:
    if len(content) > MAX_TEMPLATE_CHARS:
        too_large = Message(N_("too large (%(size)s characters, at most %(limit)s)"),
                            size=f"{len(content):,}", limit=f"{MAX_TEMPLATE_CHARS:,}")
        return [Message("%(file)s: %(problem)s", file=name, problem=too_large)]
    try:
        email._environment(email.TEMPLATE_DIR).parse(content)
    except TemplateSyntaxError as exc:
        return [Message(N_("%(file)s, line %(line)s: %(error)s"), file=name, line=exc.lineno, error=exc.message)]
    if name.endswith(".txt") and not content.startswith("Subject:"):
        return [Message(N_("%(file)s: the first line must be 'Subject: ...'"), file=name)]
    return []


def _overrides(session: Session, edited: dict[str, str] | None = None) -> dict[str, str]:
    """What mail would be written from: deployed versions, then drafts, then ``edited``."""
    over = email.deployed_templates(session)
    over.update({n: d.content for n, d in _drafts(session).items()})
    over.update(edited or {})
    return over


def preview(session: Session, name: str, content: str) -> Preview:
    """The mail ``name`` belongs to, rendered on its sample data with ``content`` as that file."""
    problems = syntax_problems(_known(name), content)
    if problems:
        return Preview("", "", "", "", problems, name.rsplit(".", 1)[1])
    template, language, kind = name.rsplit(".", 2)
    try:
        sample = email.sample_contexts().get(template, {})
        rendered = email.render(template, language, {**email.SAMPLE_BASE, **sample}, fallback=False,
                                overrides=_overrides(session, {name: content}))
    except (*email.RENDER_ERRORS, OSError) as exc:
        return Preview("", "", "", language, [f"{name}: {exc}"], kind)
    return Preview(rendered.subject, rendered.text, rendered.html, language, [], kind)


def save_draft(session: Session, name: str, content: str, who: str, now: datetime,
               revision: int | None = None) -> TemplateText:
    """Keep ``content`` as the draft of ``name``; TemplateRefused (nothing saved) if it does
    not even parse; DraftConflict if ``revision`` (the one the editor loaded) is not the
    draft's any more."""
    problems = syntax_problems(_known(name), content)
    if problems:
        raise TemplateRefused(problems)
    _, version = _live(session, name)
    def fill(draft: StudioSharedDraft) -> None:
        draft.content, draft.base_version, draft.saved_by, draft.saved_at = content, version, who, now

    draft = save_into(session, StudioSharedDraft, DRAFT_PREFIX + name, revision, name, fill)
    return TemplateText(name, content, version, True, who, now, draft.revision)


def discard_draft(session: Session, name: str) -> None:
    draft = session.get(StudioSharedDraft, DRAFT_PREFIX + _known(name))
    if draft is not None:
        session.delete(draft)


def check(session: Session) -> list[str]:
    """Every problem the templates would have live with the drafts deployed."""
    return email.check_templates(email.TEMPLATE_DIR, _overrides(session))


def drafts_seen(session: Session) -> str:
    """Which drafts, at which revision, a page shows (``name:revision``, comma-separated): the
    deploy form carries it back, so a deploy ships only the drafts the owner saw."""
    return ",".join(f"{name}:{draft.revision}" for name, draft in sorted(_drafts(session).items()))


def _still_as_seen(drafts: dict[str, StudioSharedDraft], seen: str) -> None:
    """DraftConflict naming the first draft saved, added or removed since the page was shown."""
    shown = dict(part.rsplit(":", 1) for part in seen.split(",") if ":" in part)
    for name, draft in sorted(drafts.items()):
        if shown.get(name) != str(draft.revision):
            raise DraftConflict(name, draft.revision, draft.saved_by, draft.saved_at)
    for name in sorted(set(shown) - set(drafts)):
        raise DraftConflict(name, 0, None, None)


def deploy(session: Session, who: str, now: datetime, seen: str | None = None) -> list[tuple[str, int]]:
    """Every draft as the next version of its file, all or none; drafts gone after. With
    ``seen`` (``drafts_seen`` of the page the owner deployed from), DraftConflict and nothing
    deployed when a draft was saved, added or removed since."""
    drafts = _drafts(session, lock=True)
    if seen is not None:
        _still_as_seen(drafts, seen)
    if not drafts:
        raise TemplateRefused([Message(N_("no email text draft to deploy"))])
    problems = check(session)
    if problems:
        raise TemplateRefused(problems)
    done = []
    for name, draft in sorted(drafts.items()):
        live, version = _live(session, name)
        if live != draft.content:
            session.add(EmailTemplate(name=name, version=version + 1, content=draft.content,
                                      content_hash=hashlib.sha256(draft.content.encode()).hexdigest(),
                                      deployed_at=now, deployed_by=who))
            done.append((name, version + 1))
        session.delete(draft)
    session.flush()
    return done
