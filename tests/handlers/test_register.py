"""The register operators keep entry, certificate and history in step; the public view is
limited to what the GDPR allows."""

# Fixtures are imported by name from _fixtures_records, so pytest finds them in this module;
# ruff reads their use as parameters as a redefinition (F811).
# ruff: noqa: F811

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import handlers.certificates  # noqa: F401  (registers the operators)
import handlers.register  # noqa: F401
from tests.handlers._fixtures_records import add_user, engine, make_ctx, session, settings  # noqa: F401
from certflow.settings import Settings
from certflow.store.register import Certificate, RegisterEntry, RegisterHistory
from handlers import REGISTRY, PermanentError
from certflow.services.register import public_register

LATER = datetime(2029, 1, 10, 9, 0, tzinfo=timezone.utc)


def run(session: Session, settings: Settings, operator: str, key: str,
        now: datetime | None = None, **params: Any) -> dict[str, Any]:
    ctx = make_ctx(session, settings, key) if now is None else make_ctx(session, settings, key, now)
    return REGISTRY[operator](ctx, params)


def certified(session: Session, settings: Settings, holder: str, name: str) -> dict[str, Any]:
    add_user(session, holder, name, f"{holder}@example.org")
    cert = run(session, settings, "certificates/issue", f"issue-{holder}", holder=holder)
    run(session, settings, "register/enter", f"enter-{holder}", holder=holder,
        certificate_id=cert["certificate_id"])
    return cert


def history(session: Session) -> list[tuple[str, str | None, str, str | None, str]]:
    rows = session.scalars(select(RegisterHistory).order_by(RegisterHistory.id))
    return [(h.action, h.old_status, h.new_status,
             h.old_valid_until.isoformat() if h.old_valid_until else None,
             h.new_valid_until.isoformat()) for h in rows]


def test_enter_is_idempotent_and_recorded(session: Session, settings: Settings) -> None:
    add_user(session, "anna", "Anna de Vries")
    cert = run(session, settings, "certificates/issue", "issue-1", holder="anna")
    first = run(session, settings, "register/enter", "enter-1", holder="anna",
                certificate_id=cert["certificate_id"])
    again = run(session, settings, "register/enter", "enter-1", holder="anna",
                certificate_id=cert["certificate_id"])

    assert again == first
    assert first["status"] == "valid" and first["register_number"] == cert["register_number"]
    assert first["valid_until"] == "2029-03-02"
    assert history(session) == [("entered", None, "valid", None, "2029-03-02")]


def test_recertification_extend_then_lapse(session: Session, settings: Settings) -> None:
    old = certified(session, settings, "anna", "Anna de Vries")
    run(session, settings, "register/recertification_started", "recert-1", holder="anna")
    assert session.get(Certificate, old["certificate_id"]).status == "recertification_running"  # type: ignore[union-attr]

    new = run(session, settings, "certificates/issue", "issue-2", now=LATER, holder="anna",
              valid_from="2029-03-02")
    extended = run(session, settings, "register/extend", "extend-1", now=LATER, holder="anna",
                   certificate_id=new["certificate_id"])
    assert (extended["status"], extended["valid_until"]) == ("valid", "2032-03-02")
    assert extended["register_number"] == new["register_number"]
    assert session.get(Certificate, old["certificate_id"]).status == "valid"  # type: ignore[union-attr]

    lapsed = run(session, settings, "register/lapse", "lapse-1", holder="anna")
    assert lapsed["status"] == "lapsed"
    assert session.get(Certificate, new["certificate_id"]).status == "lapsed"  # type: ignore[union-attr]
    assert history(session) == [
        ("entered", None, "valid", None, "2029-03-02"),
        ("recertification_started", "valid", "recertification_running", "2029-03-02",
         "2029-03-02"),
        ("extended", "recertification_running", "valid", "2029-03-02", "2032-03-02"),
        ("lapsed", "valid", "lapsed", "2032-03-02", "2032-03-02"),
    ]


def test_transitions_the_status_does_not_allow_are_refused(session: Session,
                                                           settings: Settings) -> None:
    cert = certified(session, settings, "anna", "Anna de Vries")
    with pytest.raises(PermanentError, match="already in the register"):
        run(session, settings, "register/enter", "enter-again", holder="anna",
            certificate_id=cert["certificate_id"])
    run(session, settings, "register/lapse", "lapse-1", holder="anna")
    with pytest.raises(PermanentError, match="is lapsed; cannot mark lapsed"):
        run(session, settings, "register/lapse", "lapse-2", holder="anna")
    newer = run(session, settings, "certificates/issue", "issue-2", now=LATER, holder="anna")
    with pytest.raises(PermanentError, match="is lapsed; only a valid entry can be extended"):
        run(session, settings, "register/extend", "extend-1", holder="anna",
            certificate_id=newer["certificate_id"])
    with pytest.raises(PermanentError, match="not in the register"):
        run(session, settings, "register/lapse", "lapse-3", holder="nobody")


def test_certificate_of_someone_else_is_refused(session: Session, settings: Settings) -> None:
    certified(session, settings, "anna", "Anna de Vries")
    add_user(session, "john", "John Smith")
    johns = run(session, settings, "certificates/issue", "issue-john", holder="john")
    with pytest.raises(PermanentError, match="belongs to 'john', not 'anna'"):
        run(session, settings, "register/extend", "extend-1", holder="anna",
            certificate_id=johns["certificate_id"])


def test_suspend_and_withdraw_keep_reason_and_certificate_in_step(
    session: Session, settings: Settings
) -> None:
    cert = certified(session, settings, "anna", "Anna de Vries")
    run(session, settings, "register/suspend", "suspend-1", holder="anna",
        reason="Klacht in onderzoek")
    withdrawn = run(session, settings, "register/withdraw", "withdraw-1", holder="anna",
                    reason="Besluit certificerende instelling")

    assert withdrawn["status"] == "withdrawn"
    assert session.get(Certificate, cert["certificate_id"]).status == "withdrawn"  # type: ignore[union-attr]
    reasons = session.scalars(select(RegisterHistory.reason).order_by(RegisterHistory.id)).all()
    assert reasons == [None, "Klacht in onderzoek", "Besluit certificerende instelling"]


def test_new_certification_after_a_lapse_re_enters(session: Session,
                                                   settings: Settings) -> None:
    certified(session, settings, "anna", "Anna de Vries")
    run(session, settings, "register/lapse", "lapse-1", holder="anna")
    again = run(session, settings, "certificates/issue", "issue-2", now=LATER, holder="anna")
    entered = run(session, settings, "register/enter", "enter-2", now=LATER, holder="anna",
                  certificate_id=again["certificate_id"])

    assert (entered["status"], entered["register_number"]) == ("valid", "RL-2029-00001")
    assert session.scalar(select(func.count()).select_from(RegisterEntry)) == 1


def test_public_register_shows_only_name_number_status_level_validity(
    session: Session, settings: Settings
) -> None:
    anna = certified(session, settings, "anna", "Anna de Vries")
    certified(session, settings, "john", "John Smith")
    run(session, settings, "register/suspend", "suspend-1", holder="john", reason="Privé-reden")

    everyone = public_register(session, None)

    assert everyone == [
        {"name": "Anna de Vries", "register_number": anna["register_number"],
         "status": "valid", "level": "RL", "specialisation": None, "valid_until": "2029-03-02"},
        {"name": "John Smith", "register_number": "RL-2026-00002",
         "status": "suspended", "level": "RL", "specialisation": None,
         "valid_until": "2029-03-02"},
    ]
    assert "Privé-reden" not in repr(everyone) and "example.org" not in repr(everyone)
    assert [r["name"] for r in public_register(session, "smith")] == ["John Smith"]
    assert [r["name"] for r in public_register(session, "00001")] == ["Anna de Vries"]
    assert public_register(session, "%") == []
