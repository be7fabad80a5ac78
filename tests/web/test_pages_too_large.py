"""A browser sending more than a page route takes (an upload over 11 MB, a huge form) gets a
page in its own language saying what was too large and how large it may be, with a way back,
and nothing changes; the API keeps its JSON 413."""

from __future__ import annotations

import re
from collections.abc import Iterator

from certflow.services import case_documents as documents
from certflow.engine.facade import Actor
from tests.support import Harness
from tests.web.test_pages_mijn import PDF, _docs, apply, signed_in, site  # noqa: F401

BIG = 12 * 2**20


def test_an_upload_over_the_limit_gets_a_page_not_json(site: dict[str, str], harness: Harness) -> None:  # noqa: F811
    b = signed_in(site, "cas")
    case = apply(b)
    harness.run_jobs()
    page = b.get(f"/mijn/cases/{case}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    big = b.client.post(f"/mijn/cases/{case}/documents", data={"csrf_token": token},
                        files={"file": ("big.pdf", PDF + b"0" * BIG, "application/pdf")},
                        headers={"Referer": f"http://testserver/mijn/cases/{case}"})
    assert big.status_code == 413
    assert big.headers["content-type"].startswith("text/html")
    assert "Het bestand is groter dan 10 MB" in big.text
    assert f'href="/mijn/cases/{case}"' in big.text  # the way back
    assert "Uitloggen" in big.text  # the site's layout, still signed in
    assert _docs(case) == []


def test_a_chunked_form_over_the_limit_gets_a_page(site: dict[str, str], harness: Harness) -> None:  # noqa: F811
    b = signed_in(site, "cas")
    token = re.search(r'name="csrf_token" value="([^"]+)"', b.get("/mijn/data").text).group(1)
    body = f"csrf_token={token}&reason=".encode() + b"x" * (2 * 2**20)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]

    refused = b.client.post("/mijn/data/erasure", content=chunks(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert refused.status_code == 413
    assert "groter dan 1 MB" in refused.text and "<html" in refused.text
    assert harness.engine.instances(Actor.system(), "data_erasure") == []


def test_the_api_keeps_its_json_413(site: dict[str, str]) -> None:  # noqa: F811
    b = signed_in(site, "cas")
    response = b.client.post("/api/instances", content=b"{" + b" " * (2 * 2**20) + b"}",
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"].startswith("request body is larger than")


def test_documents_limit_is_ten_mb() -> None:
    assert documents.MAX_BYTES == 10 * 2**20


def test_a_page_route_missing_what_it_needs_gets_a_page_not_json(site: dict[str, str], harness: Harness) -> None:  # noqa: F811
    b = signed_in(site, "cas")
    case = apply(b)
    token = re.search(r'name="csrf_token" value="([^"]+)"', b.get(f"/mijn/cases/{case}").text).group(1)
    no_file = b.client.post(f"/mijn/cases/{case}/documents", data={"csrf_token": token})
    assert no_file.status_code == 422 and no_file.headers["content-type"].startswith("text/html")
    assert "Er is niets gewijzigd" in no_file.text
    bad_kind = b.get("/mijn/invoices/2026-0001/zip")
    assert bad_kind.status_code == 422 and "een veld of bestand ontbreekt" in bad_kind.text
    assert _docs(case) == []


def test_the_api_keeps_its_json_422(site: dict[str, str]) -> None:  # noqa: F811
    b = signed_in(site, "cas")
    response = b.client.post("/api/instances", json={"nothing": True})
    assert response.status_code in (403, 422)
    assert response.headers["content-type"].startswith("application/json")
