"""Money as Stripe sends it (integer minor units) and as the ledger keeps it (Decimal major units, 2 places)."""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
# Stripe's zero-decimal currencies: their amounts are already in major units.
ZERO_DECIMAL_CURRENCIES = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
})


def to_major(minor: int | str | Decimal | None, currency: str | None) -> Decimal | None:
    """Convert a Stripe amount (minor units, or a decimal string such as `unit_amount_decimal`) to major units."""
    if minor is None:
        return None
    amount = Decimal(str(minor))
    if currency is None or currency.upper() not in ZERO_DECIMAL_CURRENCIES:
        amount = amount / 100
    return amount


def cents(amount: Decimal) -> Decimal:
    """Round half-even to cents, once, at the end of a computation."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
