"""Operations endpoints and the request middleware.

``/healthz``: the process is up (no dependency is touched). ``/readyz``: database reachable,
migrations at head and broker reachable, else 503 with the reasons; compose and load balancers
send traffic only to a ready web. ``/metrics``: Prometheus text (see docs/operations.md).

The middleware gives every request an id (the caller's ``X-Request-ID`` when it sends a sane
one), returns it in the response, puts it on every log line of the request and on every job the
request causes, logs one line per request and records its duration.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse, Response

from certflow.observability import checks, metrics
from certflow.observability.collector import DatabaseCollector
from certflow.observability.context import log_context, new_request_id
from certflow.settings import get_settings

log = logging.getLogger("certflow.http")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
QUIET = {"/healthz", "/readyz", "/metrics"}

# Not in /openapi.json: these are for load balancers and Prometheus (docs/operations.md).
router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(authorization: str | None = Header(default=None)) -> JSONResponse:
    """Each check's status for anyone (a load balancer); its detail and fix (the database's
    host or file, the broker's address, the migration heads, an exception's text) only with
    the metrics token: that is for the operator, not for whoever finds the site."""
    settings = get_settings()
    results = checks.readiness(settings)
    ready = all(c.ok for c in results)
    detailed = bool(settings.metrics_token) and _has_token(settings.metrics_token, authorization)
    body = {"status": "ready" if ready else "unready",
            "checks": {c.name: {"status": c.status, **({"detail": c.detail, **({"fix": c.fix} if c.fix else {})}
                                                       if detailed else {})}
                       for c in results}}
    return JSONResponse(body, status_code=200 if ready else 503)


def _has_token(token: str, authorization: str | None) -> bool:
    given = authorization.removeprefix("Bearer ").strip() if authorization else ""
    return secrets.compare_digest(given, token)


@router.get("/metrics", response_class=Response)
def metrics_endpoint(authorization: str | None = Header(default=None)) -> Response:
    settings = get_settings()
    if settings.metrics_token:
        if not _has_token(settings.metrics_token, authorization):
            raise HTTPException(401, "metrics need the metrics token")
    body, content_type = metrics.render(DatabaseCollector(settings))
    return Response(body, media_type=content_type)


# Path parameters that carry a secret (the password-reset link's token): whoever reads the
# logs must not be able to use the link.
_SECRET_PARAM = re.compile(r"token|secret|password|key", re.I)


def loggable_path(scope: dict[str, Any]) -> str:
    """The request path with secret path parameters replaced by ``[redacted]``."""
    path = str(scope["path"])
    for name, value in (scope.get("path_params") or {}).items():
        if _SECRET_PARAM.search(name) and str(value):
            path = path.replace(str(value), "[redacted]")
    return path


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): the context set here reaches the endpoint's thread."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE_ID.match(given) else new_request_id()
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: dict[str, Any], status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        metrics.http_request(scope["method"], route, status, seconds)
        level = logging.DEBUG if scope["path"] in QUIET else logging.INFO
        path = loggable_path(scope)
        log.log(level, "%s %s %s", scope["method"], path, status,
                extra={"method": scope["method"], "path": path, "route": route, "status": status,
                       "duration_ms": round(seconds * 1000, 1)})


def install(app: FastAPI) -> None:
    """Operations routes, request ids and logging: the one line app.py needs."""
    from certflow.observability.logs import configure_logging

    settings = get_settings()
    configure_logging("web", settings.log_format, settings.log_level)
    app.include_router(router)
    app.add_middleware(RequestContextMiddleware)
