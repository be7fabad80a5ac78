"""What every route depends on: the engine of this process and the user asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Query

from certflow.engine.facade import Actor, Engine
from certflow.store.db import session_scope
from certflow.services.access import authenticate
from certflow.services.accounts import Account


# A row id or version number in a path or query: at most the database's integer (a larger one
# overflowed the driver: a 500). FastAPI refuses one outside with a 422 naming the parameter.
MAX_ID = 2**31 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def get_engine() -> Engine:
    from certflow.bootstrap import engine

    return engine()


def actor_of(account: Account) -> Actor:
    """The person as the engine facade knows them (pages: ``actor_of(user)``)."""
    return Actor(account.username, account.roles, account.is_staff)


def current_actor(authorization: Annotated[str | None, Header()] = None) -> Actor:
    token = authorization.removeprefix("Bearer ").strip() if authorization else None
    with session_scope() as session:
        return actor_of(authenticate(session, token))


EngineDep = Annotated[Engine, Depends(get_engine)]
ActorDep = Annotated[Actor, Depends(current_actor)]
