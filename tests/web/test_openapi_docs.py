"""/docs and /redoc work without internet: every asset they reference is served by the app
itself; and /openapi.json is typed: every JSON route declares what it returns."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from certflow.web.app import create_app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_reference_only_local_assets_and_all_are_served(client: TestClient,
                                                                  page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    assert "://" not in html.text, "the page would load something from another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert assets, html.text
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset
    assert "'/openapi.json'" in html.text or '"/openapi.json"' in html.text


def test_swagger_ui_bundle_can_read_openapi_3_1(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    bundle = client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "3.1.0" in bundle  # Swagger UI 5 knows 3.1; version 4 shows a blank error page


def test_every_json_route_declares_its_response(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    untyped = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            ok = next((operation["responses"][c] for c in ("200", "201")
                       if c in operation["responses"]), None)
            assert ok is not None, f"{method} {path}"
            content = ok.get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema is None:
                documents = {"application/pdf", "application/xml"} & set(content)
                assert documents, f"{method.upper()} {path} returns neither JSON nor a document"
            elif schema == {} or schema.get("title") == "Response":
                untyped.append(f"{method.upper()} {path}")
    assert untyped == []
    assert spec["components"]["schemas"]["Task"]["properties"]["assignee"]
