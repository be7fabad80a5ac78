"""certificates/issue and certificates/english_copy: numbers, validity, the PDF, idempotency."""

# Fixtures are imported by name from _fixtures_records, so pytest finds them in this module;
# ruff reads their use as parameters as a redefinition (F811).
# ruff: noqa: F811

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.orm import Session

import handlers.certificates  # noqa: F401  (registers the operators)
from tests.handlers._fixtures_records import NOW, add_user, engine, make_ctx, session, settings  # noqa: F401
from certflow.settings import Settings
from certflow.store.base import Base
from certflow.store.register import Certificate, RegisterCounter
from handlers import REGISTRY, PermanentError
from certflow.services.certificates import add_years, certificate_pdf

ISSUE = REGISTRY["certificates/issue"]
COPY = REGISTRY["certificates/english_copy"]


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """The text a reader sees, via poppler's pdftotext (pypdf when poppler is missing)."""
    if shutil.which("pdftotext"):
        path = tmp_path / "c.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                             capture_output=True, text=True)
        return out.stdout
    from io import BytesIO

    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)


def test_issue_numbers_dates_and_a_readable_pdf(session: Session, settings: Settings,
                                                tmp_path: Path) -> None:
    add_user(session, "anna", "Anna de Vriës")
    first = ISSUE(make_ctx(session, settings, "job-1"), {"holder": "anna"})
    second = ISSUE(make_ctx(session, settings, "job-2"), {"holder": "anna", "valid_years": "4"})

    assert re.fullmatch(r"RL-2026-\d{5}", first["register_number"])
    assert (first["register_number"], second["register_number"]) == ("RL-2026-00001",
                                                                     "RL-2026-00002")
    assert (first["valid_from"], first["valid_until"]) == ("2026-03-02", "2029-03-02")
    assert second["valid_until"] == "2030-03-02"

    pdf = certificate_pdf(session, first["certificate_id"])
    assert pdf.startswith(b"%PDF")
    words = pdf_text(pdf, tmp_path)
    for expected in ("Certificaat", "Anna de Vriës", "RL-2026-00001", "Loopbaanprofessional (RL)",
                     "2 maart 2026", "2 maart 2029", "Stichting CMI"):
        assert expected in words


def test_leap_day_certificate_runs_to_28_february(session: Session,
                                                 settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    result = ISSUE(make_ctx(session, settings, "job-1"),
                   {"holder": "anna", "valid_from": "2028-02-29", "valid_years": 3})

    assert (result["valid_from"], result["valid_until"]) == ("2028-02-29", "2031-02-28")
    assert add_years(date(2028, 2, 29), 4) == date(2032, 2, 29)


def test_issue_is_idempotent(session: Session, settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    first = ISSUE(make_ctx(session, settings, "job-1"), {"holder": "anna"})
    again = ISSUE(make_ctx(session, settings, "job-1"), {"holder": "anna"})

    assert again == first
    assert session.scalar(select(func.count()).select_from(Certificate)) == 1
    assert session.get(RegisterCounter, 2026).last_number == 1  # type: ignore[union-attr]


def test_numbers_restart_each_year(session: Session, settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    ISSUE(make_ctx(session, settings, "job-1"), {"holder": "anna"})
    next_year = datetime(2027, 1, 5, 10, 0, tzinfo=timezone.utc)
    result = ISSUE(make_ctx(session, settings, "job-2", now=next_year), {"holder": "anna"})

    assert result["register_number"] == "RL-2027-00001"


def test_unknown_holder_is_a_permanent_error(session: Session, settings: Settings) -> None:
    with pytest.raises(PermanentError, match="no user 'ghost'"):
        ISSUE(make_ctx(session, settings, "job-1"), {"holder": "ghost"})


def test_english_copy_is_an_english_pdf_of_the_same_certificate(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    add_user(session, "anna", "Anna de Vries")
    issued = ISSUE(make_ctx(session, settings, "job-1"),
                   {"holder": "anna", "specialisation": "Outplacement"})
    with pytest.raises(LookupError):
        certificate_pdf(session, issued["certificate_id"], "en")

    order = {"certificate_id": issued["certificate_id"]}
    first = COPY(make_ctx(session, settings, "order-1"), order)
    again = COPY(make_ctx(session, settings, "order-1"), order)

    assert again == first
    assert first["register_number"] == issued["register_number"]
    words = pdf_text(certificate_pdf(session, issued["certificate_id"], "en"), tmp_path)
    for expected in ("Certificate", "Anna de Vries", issued["register_number"],
                     "Career Professional (RL)", "Outplacement", "Valid until", "2 March 2029"):
        assert expected in words


def test_no_copy_of_a_withdrawn_certificate(session: Session, settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    issued = ISSUE(make_ctx(session, settings, "job-1"), {"holder": "anna"})
    session.get(Certificate, issued["certificate_id"]).status = "withdrawn"  # type: ignore[union-attr]

    with pytest.raises(PermanentError, match="is withdrawn"):
        COPY(make_ctx(session, settings, "order-1"), {"certificate_id": issued["certificate_id"]})


def _issue_concurrently(make_session: Any, settings: Settings, workers: int,
                        each: int) -> list[str]:
    numbers: list[str] = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(each):
                with make_session() as s, s.begin():
                    result = ISSUE(make_ctx(s, settings, f"w{worker}-{i}"), {"holder": "anna"})
                numbers.append(result["register_number"])
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return numbers


def test_concurrent_workers_never_share_a_number_sqlite(tmp_path: Path,
                                                        settings: Settings) -> None:
    eng = create_engine(f"sqlite:///{tmp_path / 'c.sqlite'}", connect_args={"timeout": 30})

    # As certflow.store.db: writers take the database lock at BEGIN.
    @event.listens_for(eng, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(eng, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    Base.metadata.create_all(eng)
    with Session(eng) as s, s.begin():
        add_user(s, "anna", "Anna de Vries")

    numbers = _issue_concurrently(lambda: Session(eng), settings, workers=4, each=5)

    assert sorted(numbers) == [f"RL-2026-{n:05d}" for n in range(1, 21)]


@pytest.mark.integration
def test_concurrent_workers_never_share_a_number_postgres(settings: Settings, pg_url: str) -> None:
    url = pg_url
    schema = f"test_certs_{os.getpid()}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    eng = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        # Only the tables this test needs: the full metadata is not this test's concern.
        tables = [Base.metadata.tables[n] for n in ("users", "register_counters", "certificates")]
        Base.metadata.create_all(eng, tables=tables)
        with Session(eng) as s, s.begin():
            add_user(s, "anna", "Anna de Vries")
        numbers = _issue_concurrently(lambda: Session(eng), settings, workers=6, each=5)
        assert sorted(numbers) == [f"RL-2026-{n:05d}" for n in range(1, 31)]
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
