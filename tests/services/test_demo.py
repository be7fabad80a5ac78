"""The demo accounts `make run` creates: one per kind of user the README lists, the office
manager (the second escalation level) among them, each able to sign in."""

from __future__ import annotations

from datetime import datetime, timezone

from certflow.services import accounts, demo
from certflow.store.db import session_scope
from tests.support import ROOT


def test_demo_users_include_the_office_manager(sqlite_url: str) -> None:
    with session_scope() as s:
        created, password = demo.ensure_demo_users(s, datetime.now(timezone.utc))
        assert password and {c.username for c in created} >= {"office", "coordinator", "office_manager"}
        manager = accounts.get(s, "office_manager")
    assert manager.has_role("office_manager") and manager.is_staff and manager.has_password
    assert "office_manager@example.org" in (ROOT / "README.md").read_text()
    with session_scope() as s:  # a second run creates nothing and prints no password
        assert demo.ensure_demo_users(s, datetime.now(timezone.utc)) == ([], None)
