"""Erasure requests (GDPR art. 17): thin adapters over certflow.services.privacy.

Operators
---------
``privacy/anonymise``
    input:  ``{person: str (username)}``
    result: ``{anonymised, at, cases_removed, documents_removed, cases_still_running,
    invoices_kept, invoices_kept_until}``. Invoices are kept 7 years; the rest of what is kept
    about the person is removed or anonymised. Running it twice changes nothing more.

Start guard
-----------
``privacy/erasure_allowed`` (start data ``{candidate}``) refuses while the person has a case
in progress (an application, a recertification, an order), saying to finish it first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from certflow.services import privacy
from handlers import HandlerContext, PermanentError, guard, handler
from certflow.i18n import Message, N_


class PersonInput(BaseModel):
    person: str = Field(min_length=1, max_length=100)


@handler("privacy/anonymise",
         summary=N_("Erase a person's personal data, keeping what the law requires (invoices)."))
def anonymise(ctx: HandlerContext, data: PersonInput) -> dict[str, Any]:
    try:
        return privacy.anonymise(ctx.session, data.person, ctx.now)
    except LookupError as exc:
        raise PermanentError(f"privacy/anonymise: {exc}") from exc


@guard("privacy/erasure_allowed")
def erasure_allowed(session: Session, now: datetime, data: dict[str, Any]) -> str | None:
    person = data.get("candidate")
    if not isinstance(person, str) or not person:
        return Message(N_("Say whose data is to be erased: the start data needs 'candidate' (a username)"))
    return privacy.erasure_refusal(session, person)
