"""The API documentation pages (/docs Swagger UI, /redoc) served entirely from this app.

FastAPI's default pages load Swagger UI from a CDN, so on a machine without internet /docs
is a blank page. The assets come from the ``fastapi-offline`` package (Swagger UI 5, which
reads FastAPI's OpenAPI 3.1) and are served under ``/docs/assets``; the pages reference nothing
else (no validator badge either: Swagger UI would ask validator.swagger.io about the spec).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
PREFIX = "/docs/assets"


def add_docs(app: FastAPI) -> None:
    """Mount the assets and the two pages; ``app`` must be built with docs_url=None and
    redoc_url=None so FastAPI's CDN pages are not registered."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} - API",
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/favicon.png", with_google_fonts=False,
        )
