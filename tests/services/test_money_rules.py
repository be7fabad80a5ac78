"""Money rules pinned as a customer or the tax office would notice them: the betalingskenmerk's
check digit at every position, VAT rounded half-up on exactly half a cent, the unit price on a
multi-quantity UBL line, and totals that always add up (property-based, against an independent
implementation of each rule written here from its published definition)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from lxml import etree
from sqlalchemy.orm import Session

import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.services.billing.numbers import (
    check_digit, is_valid_payment_reference, payment_reference,
)
from certflow.services.billing.totals import PricedLine, cents, totals
from certflow.settings import Settings
from certflow.store.billing import Invoice
from certflow.store.models import User
from handlers import REGISTRY, HandlerContext
from tests.handlers._fixtures_records import engine, session, settings  # noqa: F401  (fixtures)
from tests.handlers.test_invoicing import documents_only_where_tested  # noqa: F401  (autouse)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"


# -- the betalingskenmerk -----------------------------------------------------------------------
def reference_check_digit(digits15: str) -> int:
    """The Betaalvereniging rule, written independently: weights 2, 4, 8, 5, 10, 9, 7, 3, 6, 1
    repeating, from the rightmost digit leftwards; check = 11 - (sum mod 11), where 10 is
    written 1 and 11 is written 0."""
    cycle = [2, 4, 8, 5, 10, 9, 7, 3, 6, 1]
    total = 0
    for position, digit in enumerate(reversed(digits15)):
        total += int(digit) * cycle[position % 10]
    check = 11 - total % 11
    if check == 10:
        return 1
    if check == 11:
        return 0
    return check


@pytest.mark.parametrize("position", range(15))
def test_every_digit_position_counts_with_its_own_weight(position: int) -> None:
    """A 1 at exactly one position: the check digit is 11 - weight (mod the 10/11 rule), so a
    wrong weight at any position changes what the bank app accepts."""
    digits = ["0"] * 15
    digits[14 - position] = "1"
    body = "".join(digits)
    assert check_digit(body) == reference_check_digit(body)


@given(st.text(alphabet="123456789", min_size=15, max_size=15))
def test_check_digit_matches_the_published_rule(digits: str) -> None:
    assert check_digit(digits) == reference_check_digit(digits)


@given(st.integers(min_value=2000, max_value=9999), st.integers(min_value=1, max_value=999_999))
def test_every_invoice_gets_a_valid_unique_kenmerk(year: int, seq: int) -> None:
    ref = payment_reference(year, seq)
    assert len(ref) == 16 and ref.isdigit()
    assert int(ref[0]) == reference_check_digit(ref[1:])
    assert is_valid_payment_reference(ref)
    assert ref[1:] == f"{year:04d}{seq:011d}"


@pytest.mark.parametrize("body, expected", [
    ("000000000000001", 9),   # weight 2: 11 - 2
    ("000000000000010", 7),   # weight 4: 11 - 4
    ("000000000000005", 1),   # 5 x 2 = 10: 11 - 10 = 1
    ("000001000000000", 1),   # weight 1: 11 - 1 = 10, written 1
    ("000000000000000", 0),   # 11 - 0 = 11, written 0
    ("000000000100000", 2),   # weight 9: 11 - 9
    ("100000000000000", 1),   # weight 10 at the leftmost digit: 11 - 10
])
def test_check_digit_special_cases(body: str, expected: int) -> None:
    assert check_digit(body) == expected == reference_check_digit(body)


@given(st.text(alphabet="0123456789", min_size=16, max_size=16))
def test_a_mistyped_kenmerk_is_refused(ref: str) -> None:
    """A single changed digit is always caught (the weights are all non-zero mod 11)."""
    valid = f"{reference_check_digit(ref[1:])}{ref[1:]}"
    assert is_valid_payment_reference(valid)
    for i in range(16):
        wrong = valid[:i] + str((int(valid[i]) + 1) % 10) + valid[i + 1:]
        if i == 0 or reference_check_digit(wrong[1:]) != int(wrong[0]):
            assert not is_valid_payment_reference(wrong), (valid, wrong)


def test_kenmerk_typed_in_groups_is_accepted_and_letters_are_not() -> None:
    ref = payment_reference(2026, 12)
    assert is_valid_payment_reference(" ".join(ref[i:i + 4] for i in range(0, 16, 4)))
    assert is_valid_payment_reference(".".join(ref[i:i + 4] for i in range(0, 16, 4)))
    assert not is_valid_payment_reference(ref[:15])
    assert not is_valid_payment_reference(ref + "0")
    assert not is_valid_payment_reference("A" + ref[1:])


# -- VAT and totals -----------------------------------------------------------------------------
def line(net: str, rate: str, quantity: int = 1, category: str = "standard") -> PricedLine:
    amount = Decimal(net)
    return PricedLine(quantity, amount, False, Decimal(rate), category, amount,
                      cents(amount * quantity))


def test_vat_on_exactly_half_a_cent_rounds_up() -> None:
    """12.50 x 21% = 2.625: the invoice says 2.63 (half-up), never 2.62 (half-even)."""
    result = totals([line("12.50", "21")])
    assert (result.net, result.vat, result.gross) == (Decimal("12.50"), Decimal("2.63"), Decimal("15.13"))


def test_credit_note_vat_mirrors_the_invoice_exactly() -> None:
    """-12.50 x 21% = -2.625 -> -2.63 (away from zero), so invoice + credit note = 0."""
    credit = PricedLine(1, Decimal("12.50"), False, Decimal("21"), "standard", Decimal("12.50"),
                        Decimal("-12.50"))
    assert totals([credit]).vat == Decimal("-2.63")
    assert totals([credit]).vat + totals([line("12.50", "21")]).vat == 0


def test_vat_is_computed_per_rate_over_the_total_not_per_line() -> None:
    """Three lines of 0.10 at 21%: per line 0.02 each (0.06); over the total 0.063 -> 0.06;
    with 0.05 lines: per line 0.01 x 3 = 0.03, over the total 0.0315 -> 0.03; with 0.07:
    per line 0.01 x 3 = 0.03 but over the total 0.0441 -> 0.04. The invoice uses the total."""
    result = totals([line("0.07", "21"), line("0.07", "21"), line("0.07", "21")])
    assert result.vat == Decimal("0.04")


def test_rates_are_listed_highest_first_with_their_own_vat() -> None:
    result = totals([line("25.00", "9", category="low"), line("650.00", "21"),
                     line("10.00", "0", category="zero")])
    assert [(r.rate, r.net, r.vat) for r in result.per_rate] == [
        (Decimal("21"), Decimal("650.00"), Decimal("136.50")),
        (Decimal("9"), Decimal("25.00"), Decimal("2.25")),
        (Decimal("0"), Decimal("10.00"), Decimal("0.00")),
    ]
    assert result.gross == Decimal("823.75")


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
rates = st.sampled_from(["21", "9", "6", "0"])


@hsettings(max_examples=200)
@given(st.lists(st.tuples(amounts, rates, st.integers(min_value=1, max_value=20)),
                min_size=1, max_size=8))
def test_totals_always_add_up(lines: list[tuple[Decimal, str, int]]) -> None:
    priced = [line(str(a), r, q) for a, r, q in lines]
    result = totals(priced)
    assert result.net == sum((p.line_net for p in priced), Decimal(0))
    assert result.gross == result.net + result.vat
    for rate_total in result.per_rate:
        base = sum((p.line_net for p in priced if p.vat_rate == rate_total.rate), Decimal(0))
        expected = (base * rate_total.rate / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert (rate_total.net, rate_total.vat) == (base, expected)


# -- the UBL line price -------------------------------------------------------------------------
def _customer(session: Session) -> None:
    session.add(User(username="jan", display_name="Jan de Vries", email="jan@example.nl",
                     language="nl", groups=["candidate"], created_at=NOW,
                     address={"street": "Oudegracht 1", "postal_code": "3511 AA",
                              "city": "Utrecht", "country": "NL"}))
    session.flush()


def _invoice(session: Session, settings: Settings, **params: Any) -> Invoice:
    ctx = HandlerContext(session=session, now=NOW, idempotency_key=uuid.uuid4().hex,
                         settings=settings)
    result = REGISTRY["invoicing/create_invoice"](ctx, {"customer": "jan", **params})
    invoice = session.get(Invoice, result["invoice_id"])
    assert invoice is not None
    return invoice


@pytest.mark.documents
@pytest.mark.parametrize("product, quantity", [("english_certificate", 4), ("book", 3)])
def test_ubl_unit_price_times_quantity_is_the_line_amount(
        session: Session, settings: Settings, product: str, quantity: int) -> None:  # noqa: F811
    _customer(session)
    invoice = _invoice(session, settings, product=product, quantity=quantity)
    doc = etree.fromstring((invoice.ubl_xml or "").encode())
    [ubl_line] = doc.findall(f"{{{CAC}}}InvoiceLine")
    price = Decimal(ubl_line.findtext(f"{{{CAC}}}Price/{{{CBC}}}PriceAmount") or "nan")
    qty = int(ubl_line.findtext(f"{{{CBC}}}InvoicedQuantity") or "0")
    line_amount = Decimal(ubl_line.findtext(f"{{{CBC}}}LineExtensionAmount") or "nan")
    assert qty == quantity
    assert price < line_amount  # a unit price, not the line times the quantity
    assert abs(price * qty - line_amount) <= Decimal("0.01")


@pytest.mark.documents
def test_ubl_unit_price_of_an_inclusive_line_rounds_half_up_at_four_places(
        session: Session, settings: Settings) -> None:  # noqa: F811
    """8 books at EUR 25.00 incl. 9%: net 183.49, so the unit price is 22.93625, which the
    e-invoice states as 22.9363 (half-up), not 22.9362."""
    _customer(session)
    invoice = _invoice(session, settings, product="book", quantity=8)
    doc = etree.fromstring((invoice.ubl_xml or "").encode())
    assert doc.findtext(f"{{{CAC}}}InvoiceLine/{{{CAC}}}Price/{{{CBC}}}PriceAmount") == "22.9363"
    assert doc.findtext(f"{{{CAC}}}InvoiceLine/{{{CBC}}}LineExtensionAmount") == "183.49"
