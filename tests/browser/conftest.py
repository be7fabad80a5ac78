"""Browser tests: the real app (uvicorn in a subprocess, SQLite; a real Celery worker and beat
when a test asks for ``worker``) driven by Debian's Chromium through Playwright.

Fixtures for page tests (webB's too):

- ``app``: the running app; ``app.url``, ``app.database_url``, ``app.var``,
  ``app.person(username, roles, **extra)`` makes an account (password ``PASSWORD``).
- ``worker``: starts a Celery worker and beat on the app's database (session-wide), for tests
  whose flow runs service tasks (invoices, e-mail, certificates).
- ``browser``: one Chromium for the session.
- ``ui``: a factory: ``ui("olga")`` is a ``UI`` for a new browser context signed in as
  olga (``ui(None)`` anonymous). ``UI.visit(path, shot="name")`` loads a page, checks it
  with axe-core (no serious or critical violation) and saves a full-page screenshot to
  tests/browser/artifacts/<name>.png; ``UI.check(shot)`` does both for the current page.
  Two ``ui(...)`` objects are two browsers side by side.

Under CI=true a missing Chromium fails; elsewhere it skips.
"""

from __future__ import annotations

import json
import mailbox
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from certflow.launcher import die_with_parent
from tests.support import IN_CI, ROOT

CHROMIUM = os.environ.get("CERTFLOW_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--disable-dev-shm-usage"]
ARTIFACTS = ROOT / "tests" / "browser" / "artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery"
# App.run's process: runs each snippet it reads (one JSON string per line) in a namespace of
# its own, with the clock a new process starts with, and answers with one JSON line.
RUNNER = """
import contextlib, io, json, os, sys, traceback
answer = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # whatever else writes to stdout cannot garble an answer
sys.stdout = sys.stderr
from certflow.clock import CLOCK
for line in sys.stdin:
    out = io.StringIO()
    CLOCK.refreshed(None)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(json.loads(line), "<app.run>", "exec"), {"__name__": "__main__"})
        reply = {"ok": True, "stdout": out.getvalue()}
    except BaseException:
        reply = {"ok": False, "stdout": out.getvalue(), "error": traceback.format_exc()}
    answer.write(json.dumps(reply) + chr(10))
    answer.flush()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class App:
    url: str
    var: Path
    database_url: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    runner: subprocess.Popen[str] | None = None

    def start(self, name: str, args: list[str]) -> None:
        log = open(self.var / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            preexec_fn=die_with_parent)

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.kill()
            self.runner.wait()
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in self.var.glob("*.log"))

    def run(self, code: str, timeout: float = 120) -> Any:
        """Run Python in the app's environment (its database); returns the JSON it prints.

        In one Python process per app (``RUNNER``), started on the first call: a new
        interpreter per call paid 2.5 s of imports each time, about a hundred times a run.
        Each call gets a namespace of its own and the clock a fresh process would have."""
        if self.runner is None or self.runner.poll() is not None:
            self.runner = subprocess.Popen([sys.executable, "-c", RUNNER], cwd=ROOT, env=self.env,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=open(self.var / "run.log", "ab"),
                                           text=True, preexec_fn=die_with_parent)
        assert self.runner.stdin is not None and self.runner.stdout is not None
        self.runner.stdin.write(json.dumps(code) + "\n")
        self.runner.stdin.flush()
        ready, _, _ = select.select([self.runner.stdout], [], [], timeout)
        line = self.runner.stdout.readline() if ready else ""
        if not line:
            self.runner.kill()
            raise AssertionError(f"app.run: no answer within {timeout} s (or the runner died)\n{code}")
        reply = json.loads(line)
        assert reply["ok"], reply["error"]
        out = reply["stdout"].strip()
        return json.loads(out.splitlines()[-1]) if out else None

    def person(self, username: str, roles: list[str], **extra: Any) -> str:
        """An account with PASSWORD; returns its e-mail address."""
        self.run(
            "import json\nfrom certflow.store.db import session_scope\n"
            "from tests.support import create_user\n"
            "with session_scope() as s:\n"
            f"    create_user(s, {username!r}, {username.title() + ' Tester'!r}, {roles!r},"
            f" password={PASSWORD!r}, **json.loads({json.dumps(extra)!r}))\n")
        return f"{username}@example.org"

    def mail_link(self, to: str, path: str, timeout: float = 15) -> str:
        """The newest link starting with ``path`` (``/sign-up/confirm/``) in the mail to ``to``,
        as a path on this app (mails link to the configured public URL). Waits for it: the app
        sends such mail after its answer. A sign-up's link opens a form that asks for the
        password chosen at sign-up ('Bevestigen'); visiting it alone makes no account."""
        deadline = time.monotonic() + timeout
        while True:
            box = mailbox.Maildir(self.var / "mail", create=True)
            texts = [m.get_payload()[0].get_payload(decode=True).decode()
                     for _, m in sorted(box.items()) if to.lower() in m["To"].lower()]
            links = re.findall(re.escape(path) + r"\S+", "\n".join(texts))
            if links:
                return str(links[-1])
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {to} with a link to {path}\n{self.logs()}")
            time.sleep(0.2)

    def session_cookie(self, username: str) -> str:
        """A signed-in session for ``username``, made directly (faster than the form)."""
        return str(self.run(
            "import json\nfrom certflow.services import access\n"
            "from certflow.settings import get_settings\nfrom certflow.store.db import session_scope\n"
            "with session_scope() as s:\n"
            f"    print(json.dumps(access.start_session(s, get_settings(), {username!r}, 'test')[0]))\n"))


@pytest.fixture(scope="package")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with running_app(tmp_path_factory) as the_app:
        yield the_app


@contextmanager
def running_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """A web app on its own SQLite database, migrated and deployed. The browser tests share one
    (``package`` scope: it, its worker and its beat stop when they are done, instead of polling
    their database beside the rest of the suite);
    a test that must move the app's clock a long way takes its own (``app`` per module)."""
    var = tmp_path_factory.mktemp("browser-app")
    port = _free_port()
    database_url = f"sqlite:///{var / 'certflow.sqlite'}"
    env = {**os.environ, "CERTFLOW_ENV": "test", "CERTFLOW_VAR_DIR": str(var),
           "DATABASE_URL": database_url, "REDIS_URL": "", "PYTHONPATH": str(ROOT),
           "CERTFLOW_ARGON2_TIME_COST": "1", "CERTFLOW_ARGON2_MEMORY_KIB": "1024",
           "CERTFLOW_BEAT_INTERVAL_SECONDS": "0.5", "CERTFLOW_JOB_BACKOFF_SECONDS": "1"}
    the_app = App(f"http://127.0.0.1:{port}", var, database_url, env)
    # uvicorn starts first and imports and warms the app as `certflow web` does (2-3 s, no
    # database access) on the other core while the runner migrates and deploys; nothing is
    # asked of it before both are done.
    the_app.start("web", ["uvicorn", "certflow.web.app:serve", "--factory", "--host", "127.0.0.1",
                          "--port", str(port), "--log-level", "warning"])
    try:
        the_app.run("from certflow.bootstrap import engine, migrate\n"
                    "from certflow.engine.facade import Actor\n"
                    "migrate()\nengine().deploy(Actor.system())\n")
    except BaseException:
        the_app.stop()
        raise
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{the_app.url}/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or the_app.procs["web"].poll() is not None:
            the_app.stop()
            raise AssertionError(f"the app did not start\n{the_app.logs()}")
        time.sleep(0.2)
    try:
        yield the_app
    finally:
        the_app.stop()


@pytest.fixture(scope="package")
def worker(app: App) -> App:
    """A real Celery worker and beat on the app's database and SQLite broker."""
    if "worker" not in app.procs:
        app.start("worker", ["certflow.cli", "worker", "--concurrency=1", "--without-gossip",
                             "--without-mingle", "--without-heartbeat"])
        app.start("beat", ["certflow.cli", "beat"])
    return app


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    if not AXE.exists():
        pytest.fail(f"{AXE} missing: run `make install` (npm ci)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


class UI:
    """One browser context (a person's browser) on the app."""

    def __init__(self, app: App, context: Any) -> None:
        self.app, self.context = app, context
        self.page = context.new_page()

    def visit(self, path: str, shot: str | None = None) -> Any:
        response = self.page.goto(self.app.url + path)
        if shot:
            self.check(shot)
        return response

    def check(self, shot: str) -> None:
        """axe-core on the current page (no serious/critical violation), then a screenshot."""
        self.page.wait_for_load_state("load")
        self.page.add_script_tag(path=str(AXE))
        result = self.page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})")
        bad = [f"{v['id']} ({v['impact']}): {v['help']} -> "
               + "; ".join(n["target"][0] if isinstance(n["target"][0], str) else str(n["target"])
                           for n in v["nodes"][:5])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        assert not bad, f"accessibility violations on {self.page.url}:\n" + "\n".join(bad)

    def fill(self, label: str, value: str) -> None:
        self.page.get_by_label(label, exact=True).fill(value)

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()


@pytest.fixture
def ui(app: App, browser: Any) -> Iterator[Callable[[str | None], UI]]:
    contexts: list[Any] = []

    def make(username: str | None = None, locale: str = "nl-NL") -> UI:
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        if username:
            context.add_cookies([{"name": "certflow_session", "value": app.session_cookie(username),
                                  "url": app.url, "httpOnly": True, "sameSite": "Lax"}])
        contexts.append(context)
        return UI(app, context)

    yield make
    for context in contexts:
        context.close()
