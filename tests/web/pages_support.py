"""In-process page testing (TestClient): people with passwords, signing in, posting forms
with the page's CSRF token. webB's page tests use these too; browser tests are tests/browser."""

from __future__ import annotations

import mailbox
import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.web.app import create_app
from tests.support import create_user

PASSWORD = "correct horse battery"
ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def person(username: str, roles: list[str], *, staff: bool | None = None, **extra: Any) -> str:
    """An account with PASSWORD whose e-mail is <username>@example.org; returns the e-mail."""
    with session_scope() as session:
        create_user(session, username, username.title() + " Tester", roles,
                    is_staff=bool(staff) if staff is not None else False, password=PASSWORD,
                    **extra)
    return f"{username}@example.org"


def mails(to: str) -> list[tuple[str, str]]:
    """(subject, plain text) of every mail to ``to`` in the maildir, oldest first."""
    box = mailbox.Maildir(get_settings().var_dir / "mail", create=True)
    # A maildir key starts with the second and microsecond it was written: "1700000000.M5P..."
    found = [(tuple(int(n) for n in re.findall(r"^(\d+)\.M(\d+)", key)[0]), m["Subject"],
              m.get_payload()[0].get_payload(decode=True).decode())
             for key, m in box.items() if to.lower() in m["To"].lower()]
    return [(subject, text) for _, subject, text in sorted(found)]


def mailed_link(to: str, path: str) -> str:
    """The newest link to ``path`` (``/sign-up/confirm/``) mailed to ``to``, as a path on the
    site (mails link to the configured public URL)."""
    public = re.escape(get_settings().public_url.rstrip("/"))
    links = re.findall(public + "(" + re.escape(path) + r"\S+)", "\n".join(t for _, t in mails(to)))
    assert links, mails(to)
    return str(links[-1])


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


class Browser:
    """One browser (cookie jar) on the app: get a page, post its form."""

    def __init__(self, client: TestClient | None = None) -> None:
        # As a visitor comes: over https when the site is published there (its cookies are
        # Secure then, and an http client would not send them back).
        scheme = "https" if get_settings().public_url.startswith("https://") else "http"
        self.client = client or TestClient(create_app(), base_url=f"{scheme}://testserver")
        self.last: httpx.Response | None = None

    def get(self, url: str, **kw: Any) -> httpx.Response:
        self.last = self.client.get(url, **kw)
        return self.last

    def csrf(self, url: str = "/sign-in") -> str:
        return csrf_of(self.get(url).text)

    def post(self, url: str, data: dict[str, Any], *, form_page: str | None = None,
             csrf: str | None = None, **kw: Any) -> httpx.Response:
        """Post ``data`` with the CSRF token of ``form_page`` (default: the same URL)."""
        token = csrf if csrf is not None else self.csrf(form_page or url)
        self.last = self.client.post(url, data={**data, "csrf_token": token}, **kw)
        return self.last

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = self.post("/sign-in", {"email": email, "password": password},
                             follow_redirects=False)
        assert response.status_code == 303, response.text
        return response
