"""Dossier documents: files a candidate (or the office) uploads to a case.

Accepted are PDF, DOCX and ODT, recognised by their content (magic bytes and, for the two
zip-based formats, the package's own manifest), never by the file name or the browser's
claim; anything else, or anything over the size limit, is refused with a message saying so.
Each file is stored with its SHA-256, so a download can be checked against what was uploaded.

Who sees a case's documents: staff, the candidate the case is about, and the people working on
it: whoever holds or may pick up one of its open tasks, or has completed one (the mentor, the
assessors, the committee). Nobody else, not even other mentors or other candidates.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from certflow.clock import CLOCK
from certflow.errors import CertflowError, Conflict, Forbidden, InvalidInput, NotFound
from certflow.roles import sees_case_data
from certflow.services.viewer import Member
from certflow.store.models import WITHOUT_STATE, AuditEvent, HumanTask, Instance
from certflow.store.workspace import Document
from certflow.i18n import Message, N_

MAX_BYTES = 10 * 1024 * 1024
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
EXTENSIONS = {PDF: ".pdf", DOCX: ".docx", ODT: ".odt"}
ACCEPTED = "PDF, DOCX (Word) of ODT (OpenDocument)"


class TooLarge(CertflowError):
    status = 413


class UnsupportedType(CertflowError):
    status = 415


@dataclass(frozen=True)
class DocumentView:
    id: str
    instance_id: str
    owner: str
    uploaded_by: str
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


def detect_type(content: bytes) -> str | None:
    """The document type the bytes are, or None. Zip packages are told apart by what they
    contain: ODT names its type in a ``mimetype`` entry, DOCX has a ``word/`` part."""
    if content.startswith(b"%PDF-"):
        return PDF
    if not content.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as package:
            names = set(package.namelist())
            if "mimetype" in names and package.getinfo("mimetype").file_size < 100:
                if package.read("mimetype").strip() == ODT.encode():
                    return ODT
            if "[Content_Types].xml" in names and any(n.startswith("word/") for n in names):
                return DOCX
    except (zipfile.BadZipFile, KeyError, ValueError):
        return None
    return None


def clean_filename(name: str, content_type: str) -> str:
    """The browser's file name without its path or control characters, ending in the
    extension of what the file really is."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f\"<>|:*?]", "", base).strip(" .") or "document"
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return stem[:200] + EXTENSIONS[content_type]


def check(content: bytes) -> str:
    """The content type of an acceptable upload; refuses with what to do otherwise."""
    if len(content) == 0:
        raise InvalidInput("the file is empty; choose the document again", field="file")
    if len(content) > MAX_BYTES:
        raise TooLarge(f"the file is {len(content) / 1024 / 1024:.1f} MB; the limit is "
                       f"{MAX_BYTES // 1024 // 1024} MB. Make it smaller (e.g. save as PDF) and upload again",
                       field="file")
    kind = detect_type(content)
    if kind is None:
        raise UnsupportedType(f"this file is not a {ACCEPTED} document; save it in one of those "
                              "formats and upload again", field="file")
    return kind


def may_see(session: Session, actor: Member, instance: Instance) -> bool:
    """The staff who see case data, the case's candidate, and whoever works or worked on one
    of its tasks."""
    if sees_case_data(actor) or actor.username in (instance.subject, instance.started_by):
        return True
    working = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == instance.id, or_(
        HumanTask.assignee == actor.username,
        HumanTask.assignee.is_(None) & HumanTask.candidate_group.in_(actor.groups or ("",)),
    )).limit(1))
    if working:
        return True
    worked = session.scalar(select(AuditEvent.id).where(
        AuditEvent.instance_id == instance.id, AuditEvent.actor == actor.username,
        AuditEvent.action == "task_completed_by_user").limit(1))
    return worked is not None


def _case(session: Session, actor: Member, instance_id: str) -> Instance:
    instance = session.get(Instance, instance_id, options=[WITHOUT_STATE])
    # The same answer for "no such case" and "not yours": an id reveals nothing.
    if instance is None or not may_see(session, actor, instance):
        raise NotFound(Message(N_("no case '%(case)s' of yours"), case=instance_id))
    return instance


def _view(row: Document) -> DocumentView:
    return DocumentView(row.id, row.instance_id, row.owner, row.uploaded_by, row.filename,
                        row.content_type, row.size, row.sha256, row.created_at)


# Cases nobody assesses: a document added to them would be read by no one.
NO_UPLOADS = frozenset({"orders", "certificate_lifecycle", "register_fee"})


def takes_uploads(process_id: str, status: str) -> bool:
    """Whether the candidate may add documents: to a case someone still assesses."""
    return status == "running" and process_id not in NO_UPLOADS


def upload(session: Session, actor: Member, instance_id: str, filename: str,
           content: bytes) -> DocumentView:
    """The candidate of the case, or staff, adds a document to it; the candidate only while
    someone assesses it (``takes_uploads``), the office at any time (a late paper for the file)."""
    kind = check(content)
    instance = _case(session, actor, instance_id)
    if not (actor.is_staff or actor.username in (instance.subject, instance.started_by)):
        raise Forbidden(Message(N_("only the candidate of this case or the office may add documents to it")))
    if not actor.is_staff and not takes_uploads(instance.process_id, instance.status):
        raise Conflict(Message(N_("this case takes no more documents: it is finished, or nobody assesses it")),
                       field="file")
    now = CLOCK.now()
    row = Document(instance_id=instance.id, owner=instance.subject or instance.started_by,
                   uploaded_by=actor.username, filename=clean_filename(filename, kind),
                   content_type=kind, size=len(content),
                   sha256=hashlib.sha256(content).hexdigest(), content=content, created_at=now)
    session.add(row)
    session.add(AuditEvent(instance_id=instance.id, actor=actor.username, action="document_uploaded",
                           detail={"document": row.filename, "sha256": row.sha256, "size": row.size},
                           at=now))
    session.flush()
    return _view(row)


def for_case(session: Session, actor: Member, instance_id: str) -> list[DocumentView]:
    _case(session, actor, instance_id)
    rows = session.scalars(select(Document).where(Document.instance_id == instance_id)
                           .order_by(Document.created_at, Document.id)).all()
    return [_view(r) for r in rows]


def mine(session: Session, actor: Member) -> list[DocumentView]:
    rows = session.scalars(select(Document).where(Document.owner == actor.username)
                           .order_by(Document.created_at)).all()
    return [_view(r) for r in rows]


def download(session: Session, actor: Member, document_id: str) -> tuple[DocumentView, bytes]:
    """The document and its bytes, checked against the stored checksum."""
    row = session.get(Document, document_id)
    instance = session.get(Instance, row.instance_id, options=[WITHOUT_STATE]) if row is not None else None
    if row is None or instance is None or not may_see(session, actor, instance):
        raise NotFound(Message(N_("no document '%(document)s' of yours"), document=document_id))
    content = row.content
    if hashlib.sha256(content).hexdigest() != row.sha256:
        raise CertflowError(Message(N_("document %(document)s does not match its checksum; tell the office"),
                                     document=document_id))
    return _view(row), content
