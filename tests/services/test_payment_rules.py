"""Payments as the office and the processes notice them: which invoice a payer's text points
to, what a credit note or another currency does with money, what the office queue shows of a
payment, and which invoices a process is told are paid (also after a repeated import, when the
first attempt never got to tell it)."""

# ruff: noqa: F811  (fixtures imported by name)

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.engine.errors import Forbidden
from certflow.services.payments import (
    ImportResult,
    PaymentOutcome,
    deliverable,
    find_invoice,
    payment_issues,
    register_payment,
)
from certflow.store.billing import Invoice, Payment
from tests.handlers._fixtures_records import engine, session  # noqa: F401
from tests.services.test_camt_rules import LATER, invoices  # noqa: F401


@dataclass(frozen=True)
class Who:
    username: str
    is_staff: bool


OFFICE = Who("olga", True)
CANDIDATE = Who("cas", False)


def pay(session: Session, amount: str, external_id: str, **where: object) -> PaymentOutcome:
    return register_payment(session, LATER, amount=Decimal(amount), source="api",
                            external_id=external_id, actor="api", **where)  # type: ignore[arg-type]


def invoice(session: Session, number: str) -> Invoice:
    return session.scalars(select(Invoice).where(Invoice.number == number)).one()


# -- which invoice a payer means ------------------------------------------------------------------
def test_an_invoice_number_typed_with_spaces_is_found(session: Session, invoices: list[str]) -> None:
    found = find_invoice(session, invoice_number=f"  {invoices[1]} ")
    assert found is not None and found.number == invoices[1]


def test_a_kenmerk_for_no_invoice_does_not_hide_a_later_one(session: Session, invoices: list[str]) -> None:
    from certflow.services.billing.numbers import payment_reference

    unknown = payment_reference(2026, 999)
    known = invoice(session, invoices[1]).payment_reference
    found = find_invoice(session, payment_reference=f"{unknown} en {known}")
    assert found is not None and found.number == invoices[1]
    # ... nor an invoice number after it
    found = find_invoice(session, payment_reference=f"kenmerk {unknown}, factuur {invoices[0]}")
    assert found is not None and found.number == invoices[0]
    found = find_invoice(session, payment_reference=f"2026-000999 / {invoices[0]}")
    assert found is not None and found.number == invoices[0]


def test_a_kenmerk_or_number_inside_a_longer_number_is_not_read(session: Session,
                                                               invoices: list[str]) -> None:
    known = invoice(session, invoices[0]).payment_reference
    assert find_invoice(session, payment_reference=f"1{known}") is None
    assert find_invoice(session, payment_reference=f"{known}7") is None
    assert find_invoice(session, payment_reference=f"1{invoices[0]}") is None
    assert find_invoice(session, payment_reference=f"{invoices[0]}1") is None
    grouped = " ".join(known[i:i + 4] for i in range(0, 16, 4))
    found = find_invoice(session, payment_reference=f"betaling {grouped}.")
    assert found is not None and found.number == invoices[0]


def test_a_credit_note_is_never_paid_by_a_payment(session: Session, invoices: list[str]) -> None:
    from certflow.services.billing.invoices import CreditNoteInput, credit_note
    from certflow.settings import Settings
    from handlers import HandlerContext

    ctx = HandlerContext(session=session, now=LATER, idempotency_key="cn-1",
                         settings=Settings(_env_file=None))  # type: ignore[call-arg]
    note = credit_note(ctx, CreditNoteInput(invoice_number=invoices[0], reason="dubbel"))
    outcome = pay(session, "786.50", "cn-pay", invoice_number=note["invoice_number"])
    assert (outcome.status, outcome.invoice_paid, outcome.invoice_number) == ("unmatched", False, None)


def test_money_in_another_currency_is_for_the_office(session: Session, invoices: list[str]) -> None:
    outcome = pay(session, "786.50", "usd-1", invoice_number=invoices[0], currency="USD")
    assert (outcome.status, outcome.invoice_paid) == ("unmatched", False)
    assert invoice(session, invoices[0]).status == "open"


def test_the_part_that_completes_an_invoice_pays_it_and_not_a_cent_less(session: Session,
                                                                        invoices: list[str]) -> None:
    first = pay(session, "786.49", "p-1", invoice_number=invoices[0])
    assert (first.status, first.invoice_paid) == ("partial", False)
    last = pay(session, "0.01", "p-2", invoice_number=invoices[0])
    assert (last.status, last.invoice_paid, last.invoice_number) == ("matched", True, invoices[0])
    assert last.as_dict()["duplicate"] is False  # what the API answers: false, not null
    paid = invoice(session, invoices[0])
    assert paid.status == "paid" and paid.paid_at is not None
    assert paid.paid_at.replace(tzinfo=None) == LATER.replace(tzinfo=None)


@pytest.mark.parametrize(("amount", "message"), [
    ("0", "payment amount must be positive whole cents, got 0"),
    ("-1.00", "payment amount must be positive whole cents, got -1.00"),
    ("1.001", "payment amount must be positive whole cents, got 1.001"),
])
def test_amounts_that_are_not_money_received(session: Session, invoices: list[str], amount: str,
                                             message: str) -> None:
    with pytest.raises(ValueError) as refused:
        pay(session, amount, "bad", invoice_number=invoices[0])
    assert str(refused.value) == message
    assert session.scalars(select(Payment)).all() == []


def test_an_unknown_source_is_refused(session: Session) -> None:
    with pytest.raises(ValueError) as refused:
        register_payment(session, LATER, amount=Decimal("1.00"), source="bank", external_id="x", actor="a")
    assert str(refused.value) == "payment source must be one of ('staff', 'api', 'camt'), got 'bank'"


# -- what the office queue shows ------------------------------------------------------------------
def test_the_office_queue_shows_what_the_office_needs(session: Session, invoices: list[str]) -> None:
    pay(session, "5.00", "q-1", payment_reference="gift", payer_name="A. Gever",
        booked_date=date(2026, 3, 6))
    part = pay(session, "100.00", "q-2", invoice_number=invoices[1])
    pay(session, "786.50", "q-3", invoice_number=invoices[0])  # matched: not in the queue
    shown = payment_issues(session, OFFICE)
    assert [p["external_id"] for p in shown] == ["q-1", "q-2"]
    gift, partial = shown
    assert gift == {"id": gift["id"], "status": "unmatched", "amount": "5.00", "currency": "EUR",
                    "source": "api", "external_id": "q-1", "payment_reference": "gift",
                    "payer_name": "A. Gever", "booked_date": "2026-03-06", "invoice_number": None,
                    "registered_by": "api", "created_at": gift["created_at"]}
    assert gift["created_at"].startswith("2026-03-06T19:00:00")
    assert (partial["id"], partial["status"], partial["invoice_number"], partial["booked_date"]) == (
        part.payment_id, "partial", invoices[1], None)


def test_only_staff_see_the_payment_queue(session: Session) -> None:
    with pytest.raises(Forbidden, match="^only staff may see the payment queue$"):
        payment_issues(session, CANDIDATE)


# -- what the processes are told -----------------------------------------------------------------
def test_the_process_is_told_once_per_paid_invoice_with_what_came_in(session: Session,
                                                                     invoices: list[str]) -> None:
    part = pay(session, "700.00", "d-1", invoice_number=invoices[0])
    last = pay(session, "86.50", "d-2", invoice_number=invoices[0])
    other = pay(session, "100.00", "d-3", invoice_number=invoices[1])
    assert deliverable(session, [part, other]) == []            # nothing was paid by these
    assert deliverable(session, [part, last, last]) == [
        (invoices[0], {"amount": "786.50", "paid_at": invoice(session, invoices[0]).paid_at.isoformat()})]


def test_a_repeated_payment_tells_the_process_again_in_case_the_first_never_did(
        session: Session, invoices: list[str]) -> None:
    first = pay(session, "786.50", "r-1", invoice_number=invoices[0])
    again = pay(session, "786.50", "r-1", invoice_number=invoices[0])
    assert (again.duplicate, again.invoice_paid, again.status) == (True, False, "matched")
    assert [n for n, _ in deliverable(session, [again])] == [invoices[0]]
    # A repeated partial or unmatched payment tells nothing.
    part = pay(session, "1.00", "r-2", invoice_number=invoices[1])
    assert deliverable(session, [pay(session, "1.00", "r-2", invoice_number=invoices[1])]) == []
    assert part.status == "partial" and first.invoice_paid


def test_an_invoice_no_longer_paid_is_not_announced(session: Session, invoices: list[str]) -> None:
    paid = pay(session, "786.50", "c-1", invoice_number=invoices[0])
    invoice(session, invoices[0]).status = "credited"
    assert deliverable(session, [paid]) == []


def test_an_import_lists_each_invoice_it_paid() -> None:
    def outcome(number: str | None, paid: bool, status: str = "matched", dup: bool = False) -> PaymentOutcome:
        return PaymentOutcome(1, status, Decimal("1.00"), number, paid, dup, "camt", "x")

    result = ImportResult()
    for o in (outcome("2026-000001", True), outcome("2026-000002", False, "partial"),
              outcome("2026-000003", False), outcome(None, False, "unmatched"),
              outcome("2026-000004", False, "overpaid"), outcome("2026-000001", False, dup=True)):
        result.add(o)
    assert result.paid_invoice_numbers == ["2026-000001"]
    assert [len(result.matched), len(result.partial), len(result.unmatched), len(result.overpaid),
            len(result.duplicates)] == [2, 1, 1, 1, 1]
    assert outcome("2026-000001", True).as_dict()["amount"] == "1.00"


def test_one_outcome_that_tells_nothing_does_not_silence_the_rest(session: Session,
                                                                  invoices: list[str]) -> None:
    gift = pay(session, "5.00", "s-1", payment_reference="gift")
    paid = pay(session, "786.50", "s-2", invoice_number=invoices[0])
    assert [n for n, _ in deliverable(session, [gift, paid])] == [invoices[0]]
    assert [n for n, _ in deliverable(session, [paid, paid])] == [invoices[0]]


def test_a_repeated_overpayment_tells_the_process_nothing(session: Session, invoices: list[str]) -> None:
    pay(session, "786.50", "t-1", invoice_number=invoices[0])
    pay(session, "786.50", "t-2", invoice_number=invoices[0])  # paid twice: for the office
    again = pay(session, "786.50", "t-2", invoice_number=invoices[0])
    assert (again.duplicate, again.status) == (True, "overpaid")
    assert deliverable(session, [again]) == []
