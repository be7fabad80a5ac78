"""Orders from CMI's shop: the English certificate (holders of a valid certificate only) and
the book "Loopbaanbegeleiding in de praktijk".

Operators
---------
``orders/current_certificate``
    input:  ``{holder: str (username)}``
    result: ``{certificate_id, register_number, valid_until}`` (ISO date): the certificate
    the holder's register entry points at, which the English copy is made of. A holder whose
    entry is no longer valid (lapsed, suspended, withdrawn) is a PermanentError: staff decide.

Start guard
-----------
``orders/english_certificate_allowed`` refuses an order for an unknown product, an English
certificate for someone without a valid certificate, and a book order without a sensible
quantity. Diagram scripts cannot test whether a variable exists, so a book order must state
its ``quantity`` (the order page fills in 1).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.localtime import LOCAL_TZ as LOCAL_ZONE
from certflow.store.register import Certificate, RegisterEntry
from handlers import HandlerContext, PermanentError, guard, handler
from certflow.i18n import Message, N_

PRODUCTS = ("english_certificate", "book")
# Register statuses that still show a valid certificate (a recertification may be running).
CERTIFIED = ("valid", "recertification_running")
MAX_BOOKS = 50
# A certificate valid until 2 March is still valid on 2 March in the Netherlands.


class HolderInput(BaseModel):
    holder: str = Field(min_length=1)


def register_entry(session: Session, holder: str) -> RegisterEntry | None:
    return session.scalar(select(RegisterEntry).where(RegisterEntry.holder == holder))


def local_today(now: datetime) -> date:
    return now.astimezone(LOCAL_ZONE).date()


@handler("orders/current_certificate", effects="database",
         summary=N_("Look up the holder's valid certificate, for an order of a copy."))
def current_certificate(ctx: HandlerContext, data: HolderInput) -> dict[str, Any]:
    entry = register_entry(ctx.session, data.holder)
    if entry is None or entry.status not in CERTIFIED:
        state = entry.status if entry else "not in the register"
        raise PermanentError(f"orders/current_certificate: {data.holder!r} is {state}; "
                             "no English certificate can be made")
    cert = ctx.session.get(Certificate, entry.certificate_id)
    if cert is None:
        raise PermanentError(
            f"orders/current_certificate: missing certificate {entry.certificate_id!r}")
    return {"certificate_id": cert.id, "register_number": cert.register_number,
            "valid_until": cert.valid_until.isoformat()}


@guard("orders/english_certificate_allowed")
def english_certificate_allowed(session: Session, now: datetime,
                                data: dict[str, Any]) -> str | None:
    customer, product = data.get("customer"), data.get("product")
    if not isinstance(customer, str) or not customer:
        return Message(N_("Say who orders: the start data needs 'customer' (a username)"))
    if product not in PRODUCTS:
        return Message(N_("Unknown product '%(product)s': order 'english_certificate' or 'book'"),
                       product=product)
    if product == "book":
        return _book_refusal(data.get("quantity"))
    entry = register_entry(session, customer)
    if entry is None or entry.status not in CERTIFIED or entry.valid_until < local_today(now):
        return Message(N_("An English certificate can only be ordered by the holder of a valid "
                          "certificate in the Register Loopbaanprofessional; once you are "
                          "(re)certified you can order it"))
    return None


def _book_refusal(quantity: Any) -> str | None:
    whole = isinstance(quantity, int) and not isinstance(quantity, bool)
    if not whole or not 1 <= quantity <= MAX_BOOKS:
        return Message(N_("Say how many books you order: 'quantity' must be a whole number from "
                          "1 to %(n)s"), n=MAX_BOOKS)
    return None
