"""No secret in the logs: flows that handle passwords, API tokens, password-reset links, SMTP
credentials and bank account numbers run through the real app and services with every logger at
DEBUG, and the captured log lines (as the JSON formatter writes them, extras included) contain
none of them. Whoever reads the logs must not be able to sign in, reset a password, use a token,
log in to the mail relay or learn a payer's account."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner

from certflow.cli import main
from certflow.observability.logs import JsonFormatter
from certflow.bootstrap import build_engine
from certflow.engine.facade import Actor
from certflow.settings import reset_settings
from certflow.store.db import session_scope
from tests.handlers.test_email import Collector, free_port
from tests.processes.driver import PROCESSES
from tests.support import ROOT, Harness, create_user
from tests.web.pages_support import ADDRESS, Browser

PASSWORD = "Pw-first-7fq2-horse"
WRONG_PASSWORD = "Pw-wrong-9xk3-battery"
NEW_PASSWORD = "Pw-after-reset-4mz8-staple"
API_TOKEN = "tok-live-3b9f0c6d1e2a4f5b8c7d"
UNKNOWN_TOKEN = "tok-unknown-8a7b6c5d4e3f2a1b"
SMTP_USER = "relay-user"
SMTP_PASSWORD = "Smtp-secret-5k2n-relay"
WRONG_SMTP_PASSWORD = "Smtp-wrong-1p9q-relay"
CAMT = ROOT / "tests" / "data" / "camt053" / "ing_v02.xml"
# What a candidate writes in a form is task data: it is nobody's business in the logs.
MOTIVATION = "Mijn-motivatie-2q7w-privé"
PAYER_IBANS = ("NL20INGB0001234567", "NL44RABO0307011234", "NL69INGB0123456789")


# Loggers of the test's own tools, which certflow does not use: the SMTP relay (aiosmtpd) and
# the HTTP client playing the browser (httpx, behind TestClient).
TEST_SIDE = {"mail", "httpx"}


class Capture(logging.Handler):
    """Every record, written the way production writes it (JSON lines with extras)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.stream = io.StringIO()
        self.formatter_ = JsonFormatter("test")
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in TEST_SIDE:
            return
        self.count += 1
        self.stream.write(self.formatter_.format(record) + "\n")

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def relay() -> Iterator[tuple[Collector, int]]:
    """An SMTP relay that wants a login (without TLS, on loopback only)."""

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(), SMTP_PASSWORD.encode())
        return AuthResult(success=ok, handled=False)

    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_no_secret_reaches_the_logs(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    relay: tuple[Collector, int], capture: Capture) -> None:
    monkeypatch.setenv("CERTFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CERTFLOW_SMTP_PORT", str(relay[1]))
    monkeypatch.setenv("CERTFLOW_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("CERTFLOW_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("CERTFLOW_LOG_LEVEL", "DEBUG")  # every app built below logs everything
    reset_settings()
    with session_scope() as session:
        create_user(session, "cas", "Cas Tester", ["candidate"], password=PASSWORD, address=ADDRESS)
        create_user(session, "olga", "Olga Tester", ["office"], is_staff=True, token=API_TOKEN)

    # Passwords: a wrong one, then the right one.
    browser = Browser()
    refused = browser.post("/sign-in", {"email": "cas@example.org", "password": WRONG_PASSWORD},
                           follow_redirects=False)
    assert refused.status_code != 303
    browser.sign_in("cas@example.org", PASSWORD)

    # A password reset: the link goes out over SMTP with the relay's credentials.
    Browser().post("/password/forgot", {"email": "cas@example.org"}, form_page="/password/forgot")
    (mail,) = relay[0].messages()
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    link = re.search(r"https?://\S+/password/reset/(\S+)", body.get_content())
    assert link, body.get_content()
    reset_token = link.group(1)
    path = f"/password/reset/{reset_token}"
    stranger = Browser()
    assert stranger.get(path).status_code == 200
    done = stranger.post(path, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
                         form_page=path, follow_redirects=False)
    assert done.status_code == 303, done.text
    Browser().sign_in("cas@example.org", NEW_PASSWORD)

    # API tokens: a good one, an unknown one; a bank statement with payers' IBANs.
    client = browser.client
    assert client.get("/api/inbox", headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 200
    assert client.get("/api/inbox", headers={"Authorization": f"Bearer {UNKNOWN_TOKEN}"}).status_code == 403
    imported = client.post("/api/payments/camt053", content=CAMT.read_bytes(),
                           headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/xml"})
    assert imported.status_code == 200, imported.text

    # SMTP credentials the relay refuses: the application's confirmation mail fails in its job,
    # which logs the failure with its traceback (the worker's path).
    monkeypatch.setenv("CERTFLOW_SMTP_PASSWORD", WRONG_SMTP_PASSWORD)
    reset_settings()
    harness = Harness(build_engine())
    harness.engine.publisher = None
    harness.engine.deploy(Actor.system(), PROCESSES, only=["certification"])
    harness.engine.start(Actor("cas", ("candidate",)), "certification", "APP-LOGS",
                         {"eligibility_route": "hbo_diploma", "motivation": MOTIVATION})
    assert "retry" in harness.run_jobs(rounds=1)

    # The operator's tools with the credentials set print no secret either.
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    doctor = CliRunner().invoke(main, ["doctor"])

    logged = capture.text()
    assert capture.count > 10 and "/password/reset/[redacted]" in logged  # the capture works
    assert "Traceback" in logged and "535" in logged  # the refused login was logged, in full
    assert '"logger": "spiff.task"' in logged  # the engine's task lines are there, without data
    secrets = {"password": PASSWORD, "wrong password": WRONG_PASSWORD, "new password": NEW_PASSWORD,
               "API token": API_TOKEN, "unknown token": UNKNOWN_TOKEN, "reset token": reset_token,
               "SMTP password": SMTP_PASSWORD, "wrong SMTP password": WRONG_SMTP_PASSWORD,
               "form answer (task data)": MOTIVATION,
               **{f"IBAN {iban}": iban for iban in PAYER_IBANS}}
    leaked = {what: value for what, value in secrets.items() if value in logged}
    where = [line for line in logged.splitlines() if any(v in line for v in leaked.values())]
    assert leaked == {}, f"secrets in the logs: {sorted(leaked)}\n" + "\n".join(where)
    printed = {what for what, value in secrets.items() if value in doctor.output}
    assert printed == set(), doctor.output
