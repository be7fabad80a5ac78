"""FastAPI app: the JSON API. Every route authenticates a per-user token and acts as that
user through the facade, which decides what the user may see and do."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from certflow.engine.dto import to_json
from certflow.engine.errors import CertflowError, Forbidden
from certflow.store.db import session_scope
from certflow.web import records


from certflow.web.deps import ActorDep, EngineDep, current_actor, get_engine  # noqa: F401  (re-exported for tests)


class StartIn(BaseModel):
    process_id: str = Field(min_length=1, max_length=200)
    business_key: str = Field(min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)


class CompleteIn(BaseModel):
    data: dict[str, Any]


class AssignIn(BaseModel):
    assignee: str = Field(min_length=1, max_length=100)


class MessageIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    correlation: dict[str, Any] | None = None
    business_key: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class DeployIn(BaseModel):
    only: list[str] | None = None


def create_app() -> FastAPI:
    app = FastAPI(title="certflow", version="0.1.0",
                  description="BPMN workflows for certifying career professionals (CMI / Register Loopbaanprofessional).")

    @app.exception_handler(CertflowError)
    async def _domain_error(_: Request, exc: CertflowError) -> JSONResponse:
        return JSONResponse({"error": exc.message, **to_json(exc.details)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = {".".join(str(p) for p in e["loc"][1:]) or "body": e["msg"] for e in exc.errors()}
        return JSONResponse({"error": "invalid request", "fields": fields}, status_code=422)

    @app.get("/api/health")
    def health() -> dict[str, str]:
        with session_scope() as session:
            session.execute(text("select 1"))
        return {"status": "ok"}

    @app.get("/api/me")
    def me(actor: ActorDep) -> dict[str, Any]:
        return {"username": actor.username, "groups": list(actor.groups), "is_staff": actor.is_staff}

    @app.post("/api/deployments", status_code=201)
    def deploy(body: DeployIn, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.deploy(actor, only=body.only))

    @app.get("/api/definitions")
    def definitions(actor: ActorDep, engine: EngineDep) -> Any:
        if not actor.is_staff:
            raise Forbidden("only staff may list definitions")
        return to_json(engine.definitions())

    @app.get("/api/definitions/{process_id}/versions/{version}")
    def definition(process_id: str, version: int, actor: ActorDep, engine: EngineDep) -> Any:
        if not actor.is_staff:
            raise Forbidden("only staff may read definitions")
        return engine.definition_source(process_id, version)

    @app.post("/api/instances", status_code=201)
    def start(body: StartIn, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.start(actor, body.process_id, body.business_key, body.data))

    @app.get("/api/instances")
    def instances(actor: ActorDep, engine: EngineDep, process_id: str | None = None, status: str | None = None) -> Any:
        return to_json(engine.instances(actor, process_id, status))

    @app.get("/api/instances/{instance_id}")
    def instance(instance_id: str, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.instance(actor, instance_id))

    @app.get("/api/instances/{instance_id}/history")
    def history(instance_id: str, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.history(actor, instance_id))

    @app.post("/api/instances/{instance_id}/cancel")
    def cancel(instance_id: str, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.cancel(actor, instance_id))

    @app.get("/api/inbox")
    def inbox(actor: ActorDep, engine: EngineDep, process_id: str | None = None, group: str | None = None,
              overdue: bool | None = None) -> Any:
        return to_json(engine.inbox(actor, process_id, group, overdue))

    @app.get("/api/tasks/{task_id}")
    def task(task_id: str, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.task(actor, task_id))

    @app.post("/api/tasks/{task_id}/claim")
    def claim(task_id: str, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.claim(actor, task_id))

    @app.post("/api/tasks/{task_id}/unclaim")
    def unclaim(task_id: str, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.unclaim(actor, task_id))

    @app.post("/api/tasks/{task_id}/assign")
    def assign(task_id: str, body: AssignIn, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.assign(actor, task_id, body.assignee))

    @app.post("/api/tasks/{task_id}/complete")
    def complete(task_id: str, body: CompleteIn, actor: ActorDep, engine: EngineDep) -> Any:
        return to_json(engine.complete(actor, task_id, body.data))

    @app.post("/api/messages")
    def message(body: MessageIn, actor: ActorDep, engine: EngineDep) -> Any:
        ids = engine.deliver_message(actor, body.name, body.payload, body.correlation, body.business_key)
        return {"delivered_to": ids}

    @app.get("/api/incidents")
    def incidents(actor: ActorDep, engine: EngineDep, status: str | None = "open") -> Any:
        return to_json(engine.incidents(actor, status))

    @app.post("/api/incidents/{incident_id}/{action}")
    def resolve(incident_id: int, action: str, actor: ActorDep, engine: EngineDep) -> Any:
        return {"status": engine.resolve_incident(actor, incident_id, action)}

    app.include_router(records.router())
    return app


app = create_app()
