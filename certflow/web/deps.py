"""What every route depends on: the engine of this process and the user asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from certflow.engine.facade import Actor, Engine
from certflow.store.db import session_scope
from certflow.services.access import authenticate


def get_engine() -> Engine:
    from certflow.bootstrap import engine

    return engine()


def current_actor(authorization: Annotated[str | None, Header()] = None) -> Actor:
    token = authorization.removeprefix("Bearer ").strip() if authorization else None
    with session_scope() as session:
        return authenticate(session, token)


EngineDep = Annotated[Engine, Depends(get_engine)]
ActorDep = Annotated[Actor, Depends(current_actor)]
