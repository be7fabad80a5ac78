"""Invoice numbers and betalingskenmerken as the office, the customer and the bank see them:
``2026-000001`` and nothing outside the six digits, numbers that are consecutive per year and
restart on 1 January, no gap and no duplicate when workers take numbers at once and some roll
back (PostgreSQL), the kenmerk printed in groups of four, and what the payment matcher accepts
as a kenmerk."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.services.billing.numbers import (
    allocate_number,
    format_number,
    format_payment_reference,
    is_valid_payment_reference,
    lock_sequence,
    parse_number,
    payment_reference,
    take_number,
)
from certflow.store.billing import InvoiceSequence
from tests.handlers._fixtures_records import engine, session  # noqa: F401  (fixtures)
from tests.handlers.test_invoicing import pg_engine  # noqa: F401  (fixture)


# -- the number ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("year", "seq", "text"), [
    (2026, 1, "2026-000001"), (2026, 999_999, "2026-999999"), (987, 12, "0987-000012"),
    (2027, 4321, "2027-004321"),
])
def test_invoice_numbers_read_year_dash_six_digits(year: int, seq: int, text: str) -> None:
    assert format_number(year, seq) == text
    assert parse_number(text) == (year, seq)
    assert parse_number(f"  {text} ") == (year, seq)


@pytest.mark.parametrize("seq", [0, -1, 1_000_000])
def test_a_seventh_digit_or_number_zero_is_refused(seq: int) -> None:
    with pytest.raises(ValueError, match=f"^invoice sequence {seq} out of range for 2026$"):
        format_number(2026, seq)


@pytest.mark.parametrize("text", ["2026-00001", "2026-0000001", "26-000001", "2026/000001",
                                  "X2026-000001", "2026-000001X", ""])
def test_what_is_not_an_invoice_number(text: str) -> None:
    with pytest.raises(ValueError, match=r"^not an invoice number \(YYYY-NNNNNN\): "):
        parse_number(text)


# -- the kenmerk --------------------------------------------------------------------------------
def test_the_kenmerk_is_check_digit_year_and_eleven_digit_sequence() -> None:
    # 202600000000012, digit x weight from the right: 2x2 + 1x4 + 6x4 + 2x8 + 2x10 = 68,
    # 68 mod 11 = 2, check digit 11 - 2 = 9. For sequence 1: 62, 62 mod 11 = 7, check 4.
    assert payment_reference(2026, 12) == "9202600000000012"
    assert payment_reference(2026, 1) == "4202600000000001"
    assert format_payment_reference("9202600000000012") == "9202 6000 0000 0012"
    assert format_payment_reference("5000056789012345") == "5000 0567 8901 2345"


def test_what_the_matcher_takes_for_a_kenmerk() -> None:
    assert is_valid_payment_reference("5000056789012345")
    assert is_valid_payment_reference("5000 0567 8901 2345")
    assert is_valid_payment_reference("5000.0567.8901.2345")
    assert is_valid_payment_reference("5000\t0567\n8901 2345")
    assert not is_valid_payment_reference("5000-0567-8901-2345")
    assert not is_valid_payment_reference("500005678901234")    # 15 digits
    assert not is_valid_payment_reference("50000567890123456")  # 17 digits
    assert not is_valid_payment_reference("4000056789012345")   # wrong check digit
    assert not is_valid_payment_reference("")


@pytest.mark.parametrize("bad", ["12345678901234", "1234567890123456", "12345678901234a"])
def test_the_check_digit_needs_exactly_fifteen_digits(bad: str) -> None:
    from certflow.services.billing.numbers import check_digit

    with pytest.raises(ValueError, match=f"^expected 15 digits, got {bad!r}$"):
        check_digit(bad)


# -- taking numbers -----------------------------------------------------------------------------
def test_numbers_count_up_per_year_and_start_at_one_in_a_new_year(session: Session) -> None:  # noqa: F811
    assert [allocate_number(session, 2026) for _ in range(3)] == [1, 2, 3]
    assert allocate_number(session, 2027) == 1
    assert allocate_number(session, 2026) == 4
    session.commit()
    rows = {r.year: r.last_seq for r in session.scalars(select(InvoiceSequence))}
    assert rows == {2026: 4, 2027: 1}


def test_a_rolled_back_number_is_taken_again(session: Session) -> None:  # noqa: F811
    assert allocate_number(session, 2026) == 1
    session.commit()
    assert take_number(lock_sequence(session, 2026)) == 2
    session.rollback()
    assert allocate_number(session, 2026) == 2


@pytest.mark.integration
def test_workers_taking_numbers_at_once_leave_no_gap_and_no_duplicate(pg_engine: Any) -> None:  # noqa: F811
    """Four workers, 25 numbers each in their own transaction; every 7th is rolled back after
    it was taken, as a crashing job would. What was committed is 1..n, each once."""
    taken: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            for i in range(25):
                with Session(pg_engine) as s:
                    number = allocate_number(s, 2026)
                    if i % 7 == 3:
                        s.rollback()
                        continue
                    s.commit()
                with lock:
                    taken.append(number)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(taken) == list(range(1, 4 * 21 + 1))
    with Session(pg_engine) as s:
        row = s.get(InvoiceSequence, 2026)
        assert row is not None and row.last_seq == 84
