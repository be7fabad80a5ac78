"""FastAPI app: the JSON API (routers per resource in ``certflow.web.api``). Every route
authenticates a per-user token (``certflow.web.deps``) and acts as that user through the facade
and the services, which decide what the user may see and do. ``create_app`` only wires."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from certflow.engine.dto import to_json
from certflow.errors import CertflowError
from certflow.web import pages
from certflow.web import ops
from certflow.web.api import api_router
from certflow.settings import get_settings
from certflow.web.docs import add_docs
from certflow.web.headers import SecurityHeaders
from certflow.web.json_bodies import body_refusal
from certflow.web.limits import BodyLimit, BodyTooLarge, refusal
from certflow.web.text_input import ControlCharacters
# Re-exported: tests override get_engine / current_actor on the app.
from certflow.web.deps import ActorDep, EngineDep, current_actor, get_engine  # noqa: F401


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal is ``{"error": "...", ...details}`` with the error's own status."""

    @app.exception_handler(CertflowError)
    async def _domain_error(_: Request, exc: CertflowError) -> JSONResponse:
        return JSONResponse({"error": exc.message, **to_json(exc.details)}, status_code=exc.status)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(refusal(exc.limit), status_code=413)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = body_refusal(request, list(exc.errors()))
        if refused is not None:
            return JSONResponse(refused[1], status_code=refused[0])
        fields = {".".join(str(p) for p in e["loc"][1:]) or "body": e["msg"] for e in exc.errors()}
        return JSONResponse({"error": "invalid request", "fields": fields}, status_code=422)


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(lifespan: Lifespan | None = None) -> FastAPI:
    app = FastAPI(title="certflow", version="0.1.0", docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="BPMN workflows for certifying career professionals "
                              "(CMI / Register Loopbaanprofessional).")
    add_error_handlers(app)
    add_docs(app)
    app.include_router(api_router)
    pages.install(app)  # the browser application: pages, static files, HTML error pages
    app.add_middleware(BodyLimit)
    app.add_middleware(ControlCharacters)  # before any route reads a parameter
    app.add_middleware(SecurityHeaders, https=get_settings().public_url.startswith("https://"))
    ops.install(app)
    return app


@asynccontextmanager
async def _started(_: FastAPI) -> AsyncIterator[None]:
    """A serving process's start, before its first request: load what that request would load
    lazily (the handlers and the services they call, the database driver, the ORM's mappings,
    this year's and next year's Dutch holidays: certflow.bootstrap.preload), build the
    process's engine, then take all of it out of the cyclic collector's passes for good
    (certflow.bootstrap.freeze_heap), as a worker does. Connects to nothing."""
    from certflow.bootstrap import engine, freeze_heap, preload
    from certflow.settings import get_settings

    preload(get_settings())
    engine()
    freeze_heap()
    yield


def serve() -> FastAPI:
    """The app a web process serves (``certflow web``: uvicorn's factory), started warm."""
    return create_app(lifespan=_started)


app = create_app()  # for tests and tools: started cold, nothing frozen
