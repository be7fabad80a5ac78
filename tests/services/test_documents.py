"""Dossier documents: type by content, size limit, checksum, and who may see them."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from certflow.engine.errors import Forbidden, InvalidInput, NotFound
from certflow.services import case_documents as documents
from certflow.services.case_documents import DOCX, ODT, PDF, TooLarge, UnsupportedType
from tests.processes.driver import Driver
from tests.services.conftest import apply, to_dossier, tx

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buffer.getvalue()


DOCX_BYTES = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
ODT_BYTES = _zip({"mimetype": ODT.encode(), "content.xml": b"<office:document-content/>"})


def test_types_are_told_by_content_not_by_name() -> None:
    assert documents.detect_type(PDF_BYTES) == PDF
    assert documents.detect_type(DOCX_BYTES) == DOCX
    assert documents.detect_type(ODT_BYTES) == ODT
    assert documents.detect_type(_zip({"evil.exe": b"MZ"})) is None
    assert documents.detect_type(b"MZ\x90\x00 not a pdf") is None
    assert documents.detect_type(b"PK\x03\x04 broken zip") is None
    assert documents.clean_filename("C:\\Users\\cas\\dossier.exe", PDF) == "dossier.pdf"
    assert documents.clean_filename("../../etc/passwd", DOCX) == "passwd.docx"


def test_candidate_uploads_and_the_assigned_mentor_sees_it_others_do_not(world: Driver) -> None:
    case = to_dossier(world, "cas", mentor="mila")
    cas = world.people["cas"]
    doc = tx(documents.upload, cas, case, "mijn dossier.pdf", PDF_BYTES)
    assert doc.sha256 == hashlib.sha256(PDF_BYTES).hexdigest() and doc.size == len(PDF_BYTES)
    assert doc.filename == "mijn dossier.pdf" and doc.owner == "cas"
    # Named .pdf by the browser but really a Word file: stored as what it is.
    word = tx(documents.upload, cas, case, "bijlage.pdf", DOCX_BYTES)
    assert word.content_type == DOCX and word.filename == "bijlage.docx"
    assert [d.id for d in tx(documents.for_case, world.people["olga"], case)] == [doc.id, word.id]
    assert [d.id for d in tx(documents.mine, cas)] == [doc.id, word.id]
    # The mentor sees the dossier once the review task is theirs.
    with pytest.raises(NotFound):
        tx(documents.for_case, world.people["mila"], case)
    world.do("cas", "write_dossier", {"knowledge": "k", "tasks": "t", "competences": "c", "hours_spent": 30})
    assert len(tx(documents.for_case, world.people["mila"], case)) == 2
    view, content = tx(documents.download, world.people["mila"], doc.id)
    assert content == PDF_BYTES and view.id == doc.id
    # Another mentor, another candidate: nothing, and the same answer as for a wrong id.
    for outsider in ("max", "bea"):
        with pytest.raises(NotFound):
            tx(documents.download, world.people[outsider], doc.id)
        with pytest.raises(NotFound):
            tx(documents.for_case, world.people[outsider], case)
    with pytest.raises(Forbidden):
        tx(documents.upload, world.people["mila"], case, "x.pdf", PDF_BYTES)
    history = world.engine.history(world.people["olga"], case)
    assert [h["detail"]["document"] for h in history if h["action"] == "document_uploaded"] == [
        "mijn dossier.pdf", "bijlage.docx"]


def test_wrong_type_empty_or_too_large_is_refused_and_nothing_is_stored(world: Driver) -> None:
    case = apply(world, "cas")
    cas = world.people["cas"]
    with pytest.raises(UnsupportedType) as refused:
        tx(documents.upload, cas, case, "dossier.pdf", b"MZ\x90\x00" * 100)
    assert "PDF" in refused.value.message and refused.value.details["field"] == "file"
    with pytest.raises(TooLarge) as too_big:
        tx(documents.upload, cas, case, "groot.pdf", PDF_BYTES + b"0" * documents.MAX_BYTES)
    assert "10 MB" in too_big.value.message
    with pytest.raises(InvalidInput):
        tx(documents.upload, cas, case, "leeg.pdf", b"")
    with pytest.raises(NotFound):
        tx(documents.upload, world.people["bea"], case, "x.pdf", PDF_BYTES)
    assert tx(documents.for_case, cas, case) == []
