"""The JSON API, one router per resource (the shape of fastapi/full-stack-fastapi-template's
``api/routes``): each module declares ``router = APIRouter(prefix=..., tags=[...])`` and typed
response models, so /openapi.json says what every route returns. Routes translate HTTP only:
who may do what is decided by the engine facade and the application services."""

from fastapi import APIRouter

from certflow.web.api import (
    certificates,
    definitions,
    escalations,
    instances,
    invoices,
    messages,
    payments,
    register,
    system,
    tasks,
)

api_router = APIRouter()
for module in (system, definitions, instances, tasks, escalations, messages, payments, invoices,
               certificates, register):
    api_router.include_router(module.router)
