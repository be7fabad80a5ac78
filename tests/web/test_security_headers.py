"""Headers every answer carries (certflow.web.headers), and the session cookie behind a
proxy that ends TLS."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from certflow.web.app import create_app
from tests.web.pages_support import Browser, person


def test_no_other_site_can_frame_a_page_or_read_where_a_visitor_came_from(sqlite_url: str) -> None:
    """A page in a hidden frame on another site: a visitor clicks its one-click forms (the
    erasure request, a take-over, the studio's deploy) without seeing them."""
    cas = person("cas", ["candidate"])
    browser = Browser()
    browser.sign_in(cas)
    for answer in (browser.get("/mijn/data"), browser.get("/sign-in"), TestClient(create_app()).get("/api/health"),
                   browser.get("/no-such-page")):
        assert answer.headers["x-frame-options"] == "DENY", answer.request.url
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in answer.headers  # a plain-http site


def test_a_site_on_https_keeps_its_cookie_secure_behind_a_proxy_that_ends_tls(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy talks http to certflow; unless FORWARDED_ALLOW_IPS names it, the request
    looks like http, and the session cookie went out without Secure (readable on any http
    request the browser makes to the site)."""
    from certflow.settings import reset_settings

    monkeypatch.setenv("CERTFLOW_PUBLIC_URL", "https://mijn.cmi.example/")
    reset_settings()
    page = TestClient(create_app(), base_url="http://testserver").get("/sign-in")  # as the proxy asks
    cookies = page.headers.get_list("set-cookie")
    assert cookies and all("Secure" in c and "HttpOnly" in c for c in cookies), cookies
    assert page.headers["strict-transport-security"].startswith("max-age=")
