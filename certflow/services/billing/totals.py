"""Invoice arithmetic: line amounts and VAT per rate, shared by the invoice, its PDF and UBL.

VAT is computed per rate over the invoice total and rounded half-up to cents (one of the two
methods Dutch tax law allows, applied consistently). A VAT-inclusive price (the book) keeps
its gross exact: the net is derived as gross / (1 + rate) and the VAT is the difference, so a
customer who was told EUR 25.00 is invoiced exactly EUR 25.00.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from certflow.services.billing.fees import Price

CENT = Decimal("0.01")
UNIT_PLACES = Decimal("0.0001")
HUNDRED = Decimal(100)


def cents(value: Decimal) -> Decimal:
    """Round half-up (away from zero on .5, so credit notes mirror invoices exactly)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class LineLike(Protocol):
    quantity: int
    unit_price: Decimal
    vat_inclusive: bool
    vat_rate: Decimal
    vat_category: str
    line_net: Decimal


@dataclass(frozen=True)
class PricedLine:
    quantity: int
    unit_price: Decimal
    vat_inclusive: bool
    vat_rate: Decimal
    vat_category: str
    unit_net: Decimal
    line_net: Decimal


def price_line(price: Price, quantity: int) -> PricedLine:
    """One invoice line for ``quantity`` of a product at its table price."""
    amount = price.net * quantity
    if price.vat_inclusive:
        line_net = cents(amount / (1 + price.vat_rate / HUNDRED))
        unit_net = (line_net / quantity).quantize(UNIT_PLACES, rounding=ROUND_HALF_UP)
    else:
        line_net, unit_net = cents(amount), price.net
    return PricedLine(quantity, price.net, price.vat_inclusive, price.vat_rate, price.vat_category,
                      unit_net, line_net)


@dataclass(frozen=True)
class RateTotal:
    """What the invoice must show per VAT rate: taxable amount, rate and VAT."""

    rate: Decimal
    category: str
    net: Decimal
    vat: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat


@dataclass(frozen=True)
class Totals:
    per_rate: tuple[RateTotal, ...]

    @property
    def net(self) -> Decimal:
        return sum((r.net for r in self.per_rate), Decimal("0.00"))

    @property
    def vat(self) -> Decimal:
        return sum((r.vat for r in self.per_rate), Decimal("0.00"))

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat


def totals(lines: Iterable[LineLike]) -> Totals:
    """Net and VAT per rate, highest rate first."""
    groups: dict[tuple[Decimal, str], list[LineLike]] = {}
    for line in lines:
        groups.setdefault((Decimal(line.vat_rate), line.vat_category), []).append(line)
    per_rate = []
    for (rate, category), group in sorted(groups.items(), key=lambda kv: -kv[0][0]):
        exclusive_net = sum((g.line_net for g in group if not g.vat_inclusive), Decimal(0))
        inclusive = [g for g in group if g.vat_inclusive]
        inclusive_net = sum((g.line_net for g in inclusive), Decimal(0))
        inclusive_gross = sum((g.unit_price * g.quantity for g in inclusive), Decimal(0))
        vat = cents(exclusive_net * rate / HUNDRED) + cents(inclusive_gross - inclusive_net)
        per_rate.append(RateTotal(rate, category, cents(exclusive_net + inclusive_net), vat))
    return Totals(tuple(per_rate))


def amount_text(value: Decimal) -> str:
    """``"786.50"``: amounts in handler results are strings, so JSON keeps them exact."""
    return f"{cents(value):.2f}"
