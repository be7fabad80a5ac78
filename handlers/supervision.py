"""Supervisor-backed recertification (the joint quality mark, from 1 July 2020): who may sign
up with which supervisor, and the names the process's emails address people by.

The rules every recertification shares (in the register, not lapsed, suspended, withdrawn or
expired, none running yet), the current certificate and the assessor check live in
``handlers.recertification``; this module adds what only the supervisor route needs.

Operators
---------
``supervision/names``
    input:  ``{holder: str (username), supervisor: str (username)}``
    result: ``{holder_name, supervisor_name}``: display names, for emails that mention the
    other person ("your supervisor Sam Jansen"); an unknown username is returned as is.
    Read-only, so a replay is harmless.

Start guard
-----------
``recertification/supervisor_signup_allowed`` (start data ``{candidate, supervisor,
specialisation}``) refuses everything ``recertification/signup_allowed`` refuses, and a
sign-up whose supervisor is missing, not a known user in group ``supervisor``, or the
candidate themselves, or whose ``specialisation`` is not a string ("" for none).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from certflow.store.models import User
from handlers import REGISTRY, HandlerContext, guard, handler
from certflow.i18n import Message, N_

# The rules every recertification shares, by their registered name (handlers/recertification.py).
SHARED_GUARD = "recertification/signup_allowed"


class NamesInput(BaseModel):
    holder: str = Field(min_length=1)
    supervisor: str = Field(min_length=1)


def display_name(session: Session, username: str) -> str:
    user = session.get(User, username)
    return user.display_name if user is not None and user.display_name.strip() else username


@handler("supervision/names", effects="database",
         summary=N_("Look up the names of the professional and the supervisor, for the mails."))
def names(ctx: HandlerContext, data: NamesInput) -> dict[str, Any]:
    return {"holder_name": display_name(ctx.session, data.holder),
            "supervisor_name": display_name(ctx.session, data.supervisor)}


@guard("recertification/supervisor_signup_allowed")
def supervisor_signup_allowed(session: Session, now: datetime, data: dict[str, Any]) -> str | None:
    refusal = REGISTRY.guards[SHARED_GUARD](session, now, data)
    if refusal:
        return refusal
    candidate, supervisor = data["candidate"], data.get("supervisor")
    if not isinstance(supervisor, str) or not supervisor:
        return Message(N_("Say who your supervisor is: the start data needs 'supervisor' (the "
                          "username of the supervisor you chose)"))
    user = session.get(User, supervisor)
    if user is None or "supervisor" not in (user.groups or []):
        return Message(N_("'%(user)s' is not a supervisor known to CMI; choose a registered "
                          "supervisor (or ask them to register first)"), user=supervisor)
    if supervisor == candidate:
        return Message(N_("You cannot be your own supervisor; choose the supervisor who followed "
                          "your development"))
    if not isinstance(data.get("specialisation"), str):
        return Message(N_("Say whether you want a specialisation: 'specialisation' is \"\" for the "
                          "standard recertification, or the name of the specialisation"))
    return None
