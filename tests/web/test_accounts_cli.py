"""`certflow user` and `certflow token`: roles split on commas, addresses completed later,
tokens that expire and can be revoked, and the API refusing them afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from certflow.cli import main
from certflow.errors import Forbidden
from certflow.services import access, accounts
from certflow.store.db import session_scope
from certflow.web.app import create_app


def run(*args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(main, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


def test_user_with_two_groups_then_an_address(sqlite_url: str) -> None:
    token = run("user", "meta", "--name", "Meta Mentor", "--group", "mentor,assessor").strip()
    with session_scope() as session:
        meta = accounts.get(session, "meta")
        assert meta.roles == ("mentor", "assessor") and not meta.is_staff
        assert access.authenticate(session, token).roles == ("mentor", "assessor")
    out = run("user", "meta", "--street", "Neude 11", "--postal-code", "3512ag", "--city", "Utrecht")
    assert "Neude 11" in out
    run("user", "meta", "--city", "Amersfoort")  # one line changed, the others kept
    with session_scope() as session:
        assert accounts.get(session, "meta").address == {
            "street": "Neude 11", "postal_code": "3512 AG", "city": "Amersfoort", "country": "NL"}
    bad = CliRunner().invoke(main, ["user", "meta", "--postal-code", "12"])
    assert bad.exit_code == 1 and "postal_code" in bad.output
    unknown = CliRunner().invoke(main, ["user", "x1", "--name", "X", "--group", "mentor,wizard"])
    assert unknown.exit_code == 1 and "unknown role 'wizard'" in unknown.output


def test_user_password_lets_them_sign_in(sqlite_url: str) -> None:
    run("user", "olga", "--name", "Olga", "--group", "office")
    out = run("user", "olga", "--password", "--generate-password")
    password = out.split("password: ")[1].split()[0]
    with session_scope() as session:
        from certflow.settings import get_settings

        signed = access.sign_in(session, get_settings(), "olga@example.org", password, "1.2.3.4")
    assert isinstance(signed, accounts.Account) and signed.is_staff


def test_tokens_expire_and_can_be_revoked(sqlite_url: str) -> None:
    run("user", "olga", "--name", "Olga", "--group", "office")
    secret = run("token", "create", "olga", "--name", "script", "--days", "1").splitlines()[0]
    client = TestClient(create_app())
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/me", headers=auth).status_code == 200
    listing = run("token", "list", "--user", "olga")
    assert "script" in listing and "active" in listing and secret not in listing
    with session_scope() as session:
        later = access.wall_now() + timedelta(days=1, seconds=1)
        with pytest.raises(Forbidden, match="expired"):
            access.authenticate(session, secret, now=later)
    with session_scope() as session:
        token_id = [t.id for t in access.list_tokens(session, "olga") if t.name == "script"][0]
    run("token", "revoke", str(token_id))
    refused = client.get("/api/me", headers=auth)
    assert refused.status_code == 403 and "revoked" in refused.json()["error"]
    assert "revoked" in run("token", "list")
