"""Invoice numbers and payment references.

Dutch law wants invoice numbers in one unbroken sequence. Numbers are therefore taken inside
the transaction that inserts the invoice, under a row lock on that year's sequence row: a second
worker waits until the first commits (and sees its number) or rolls back (and the number is
free again). A counter outside the transaction (a PostgreSQL SEQUENCE, Redis INCR) would leave
a gap at every rollback.

The payment reference is the 16-digit Dutch *betalingskenmerk*: a mod-11 check digit followed
by 15 digits derived from the invoice number, so it is unique whenever the number is.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from certflow.store.billing import InvoiceSequence
from certflow.store.db import dialect_insert

# Weights of the 15 reference digits, from the rightmost digit leftwards: 2**n mod 11.
_WEIGHTS = (2, 4, 8, 5, 10, 9, 7, 3, 6, 1, 2, 4, 8, 5, 10)
_NUMBER = re.compile(r"^(\d{4})-(\d{6})$")


def lock_sequence(session: Session, year: int) -> InvoiceSequence:
    """Lock ``year``'s sequence row (creating it if needed) until the caller's transaction ends.

    Invoice creation is thereby serialized per year: keep the rest of that transaction short.
    On SQLite ``FOR UPDATE`` is a no-op; there the database-wide write lock taken by
    ``BEGIN IMMEDIATE`` (certflow.store.db) gives the same guarantee.
    """
    _ensure_row(session, year)
    return session.execute(
        select(InvoiceSequence)
        .where(InvoiceSequence.year == year)
        .with_for_update()
        # The identity map may hold a stale copy from earlier in this session.
        .execution_options(populate_existing=True)
    ).scalar_one()


def take_number(row: InvoiceSequence) -> int:
    """The next number of a LOCKED sequence row (see lock_sequence)."""
    row.last_seq += 1
    return row.last_seq


def allocate_number(session: Session, year: int) -> int:
    """Lock and take in one go, for callers with nothing to check in between."""
    return take_number(lock_sequence(session, year))


def _ensure_row(session: Session, year: int) -> None:
    """Create the year's row if missing, without failing when another worker just did
    (PostgreSQL and SQLite, the two databases certflow runs on, say it the same way)."""
    session.execute(dialect_insert(session)(InvoiceSequence).values(year=year, last_seq=0)
                    .on_conflict_do_nothing(index_elements=["year"]))


def format_number(year: int, seq: int) -> str:
    """``2026-000001``: the year, then six digits, so numbers sort as text."""
    if not 0 < seq <= 999_999:
        raise ValueError(f"invoice sequence {seq} out of range for {year}")
    return f"{year:04d}-{seq:06d}"


def parse_number(number: str) -> tuple[int, int]:
    match = _NUMBER.match(number.strip())
    if not match:
        raise ValueError(f"not an invoice number (YYYY-NNNNNN): {number!r}")
    return int(match.group(1)), int(match.group(2))


def check_digit(digits15: str) -> int:
    """The betalingskenmerk check digit (Currence / Betaalvereniging, weighted modulus 11):
    sum of digit x weight from the right, C = 11 - sum mod 11, with 10 -> 1 and 11 -> 0."""
    if len(digits15) != 15 or not (digits15.isascii() and digits15.isdigit()):
        raise ValueError(f"expected 15 digits, got {digits15!r}")
    total = sum(int(d) * w for d, w in zip(reversed(digits15), _WEIGHTS))
    c = 11 - total % 11
    return {10: 1, 11: 0}.get(c, c)


def payment_reference(year: int, seq: int) -> str:
    """The 16-digit betalingskenmerk for invoice ``year-seq``: check digit + year + seq."""
    body = f"{year:04d}{seq:011d}"
    return f"{check_digit(body)}{body}"


def is_valid_payment_reference(text: str) -> bool:
    digits = re.sub(r"[\s.]", "", text)
    return (len(digits) == 16 and digits.isascii() and digits.isdigit()  # "²" is a digit to isdigit
            and check_digit(digits[1:]) == int(digits[0]))


def format_payment_reference(reference: str) -> str:
    """``5000 0567 8901 2345``: how banks print it, easier to type over."""
    return " ".join(reference[i : i + 4] for i in range(0, len(reference), 4))
