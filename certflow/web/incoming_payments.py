"""Money coming in, as the JSON API (certflow.web.api.payments) and the office's pages take
it: a payment registered, a CAMT.053 statement imported, an unmatched payment linked to the
invoice the office names.

Each is one transaction (certflow.services.payments settles the money), and only after it
committed is ``payment_received`` delivered to the process waiting on each invoice it paid:
a process that no longer waits never undoes money received, and a delivery that fails leaves
the payment standing. A payment can land before its process waits for it (the invoice e-mail
still sending): the message is then kept ``PAYMENT_TTL`` and delivered when one does. A
repeat (the same external id, a statement imported twice) changes nothing, but delivers for
an invoice it finds paid in case the first call died between commit and delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certflow.engine.facade import Actor, Engine
from certflow.errors import CertflowError, Conflict, InvalidInput
from certflow.i18n import N_
from certflow.services import payment_queue, payments
from certflow.services.payments import Delivery, ImportResult, PaymentOutcome

MESSAGE = "payment_received"
MAX_STATEMENT_BYTES = 5 * 1024 * 1024  # a CAMT.053 statement, on the API and the page alike
PAYMENT_TTL = timedelta(days=90)
T = TypeVar("T", PaymentOutcome, ImportResult)


@dataclass(frozen=True)
class Told:
    """What the process waiting on one paid invoice heard."""

    invoice_number: str
    delivered: bool
    instances: list[str] = field(default_factory=list)
    # No process waits yet: the payment is kept and delivered when one does.
    buffered: bool = False
    # Why it was not delivered (nobody waits any more, the diagram refused it).
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """As the API has always answered: only the keys that say something."""
        if self.delivered:
            return {"invoice_number": self.invoice_number, "delivered": True, "instances": self.instances}
        out: dict[str, Any] = {"invoice_number": self.invoice_number, "delivered": False}
        if self.buffered:
            out["buffered"] = True
        out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Recorded:
    """One payment registered or linked, and what its invoice's process heard (None: it paid
    no invoice, so nobody was told)."""

    outcome: PaymentOutcome
    told: Told | None


@dataclass(frozen=True)
class Imported:
    result: ImportResult
    told: list[Told]

    def told_about(self, invoice_number: str | None) -> Told | None:
        return next((t for t in self.told if t.invoice_number == invoice_number), None)


def deliver(engine: Engine, actor: Actor, deliveries: list[Delivery]) -> list[Told]:
    """After commit. The payment stands whatever happens here."""
    told = []
    for number, payload in deliveries:
        try:
            ids = engine.deliver_message(actor, MESSAGE, payload, {"invoice_number": number},
                                         ttl=PAYMENT_TTL)
        except CertflowError as exc:  # nobody waits (any more), or the diagram refused it
            told.append(Told(number, False, reason=exc.message))
            continue
        if ids:
            told.append(Told(number, True, list(ids)))
        else:  # the process has not reached its wait yet (the invoice email still sending)
            told.append(Told(number, False, buffered=True,
                             reason=f"no process waits for invoice {number} yet: the payment "
                                    f"is kept {PAYMENT_TTL.days} days and delivered when one does"))
    return told


def registering(engine: Engine, work: Callable[[Session], T]) -> tuple[T, list[Delivery]]:
    """Run ``work`` in one transaction and collect what to deliver once it committed."""
    try:
        with engine.session() as session:
            result = work(session)
            outcomes = result.matched + result.duplicates if isinstance(result, ImportResult) else [result]
            return result, payments.deliverable(session, outcomes)
    except ValueError as exc:  # the services' word for bad input; rolled back, nothing written
        raise InvalidInput(str(exc)) from exc
    except IntegrityError as exc:  # the same external_id inserted concurrently
        raise Conflict("the same payment is being registered right now; retry") from exc


def _one(engine: Engine, actor: Actor, work: Callable[[Session], PaymentOutcome]) -> Recorded:
    outcome, deliveries = registering(engine, work)
    told = deliver(engine, actor, deliveries)
    return Recorded(outcome, told[0] if told else None)


def record(engine: Engine, actor: Actor, *, amount: Decimal, source: str, external_id: str,
           invoice_number: str | None = None, payment_reference: str | None = None,
           payer_name: str = "", booked_date: date | None = None, currency: str = "EUR") -> Recorded:
    """Register one payment (idempotent on ``source`` and ``external_id``: see
    ``Recorded.outcome.duplicate``); the caller checked who may."""
    return _one(engine, actor, lambda s: payments.register_payment(
        s, engine.now(), invoice_number=invoice_number, payment_reference=payment_reference,
        amount=amount, source=source, external_id=external_id, actor=actor.username,
        payer_name=payer_name, booked_date=booked_date, currency=currency))


def import_statement(engine: Engine, actor: Actor, xml: bytes) -> Imported:
    """Import a CAMT.053 statement: the whole file or nothing (``InvalidInput``, its cause the
    reader's ValueError); the caller checked who may."""
    result, deliveries = registering(
        engine, lambda s: payments.import_camt053(s, engine.now(), xml, actor.username))
    return Imported(result, deliver(engine, actor, deliveries))


def link(engine: Engine, actor: Actor, payment_id: int, invoice_number: str) -> Recorded:
    """Settle an unmatched payment against ``invoice_number`` (staff who see case data)."""
    payment_queue.require_case_data(actor, N_("link payments to invoices"))
    return _one(engine, actor, lambda s: payments.link_payment(
        s, engine.now(), payment_id, invoice_number, actor.username))
