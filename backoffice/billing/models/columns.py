"""Column types, enumerations and CHECK builders the billing tables share (DESIGN §3)."""

from __future__ import annotations

import sqlalchemy as sa

from backoffice.billing.ledger.vocabulary import AccountStatus, EventType, Movement

MONEY = sa.Numeric(18, 2)
TIMESTAMP = sa.DateTime(timezone=True)

BILLING_EVENT_TYPES = tuple(EventType)
MOVEMENTS = tuple(Movement)
STRIPE_EVENT_STATUSES = ("pending", "processed", "ignored", "failed")
RECOVERY_SOURCES = ("events_list", "delivery_audit")
# Stripe's own subscription statuses, kept as Stripe spells them.
SUBSCRIPTION_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)
ACCOUNT_STATUSES = tuple(AccountStatus)
PAYMENT_STATUSES = ("succeeded", "refunded", "failed", "pending", "cancelled")
# The rows whose money counts: a paid invoice (a refunded one included) and every reversal row of one.
COUNTED_PAYMENT_STATUSES = ("succeeded", "refunded")
PRICE_INTERVALS = ("day", "week", "month", "year")
TAX_BEHAVIORS = ("inclusive", "exclusive", "unspecified")

SHA256_HEX = "^[0-9a-f]{64}$"


def _one_of(column: str, values: tuple[str, ...], *, nullable: bool = False) -> str:
    """Return the SQL of a CHECK that keeps a text column within an enumeration."""
    listed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IS NULL OR {column} IN ({listed})" if nullable else f"{column} IN ({listed})"


def _currency_check(column: str, *, nullable: bool = False) -> str:
    """Return the SQL of a CHECK that a column holds an upper-case ISO 4217 code."""
    check = f"{column} ~ '^[A-Z]{{3}}$'"
    return f"{column} IS NULL OR {check}" if nullable else check


# MRR rows carry all three amounts and other rows none (DESIGN §4.5); where set, they must add up.
_AMOUNTS_ALL_OR_NONE = (
    "(previous_amount IS NULL) = (new_amount IS NULL) AND (new_amount IS NULL) = (amount_delta IS NULL)"
)
_DELTA_CHECK = (
    "previous_amount IS NULL OR new_amount IS NULL OR amount_delta IS NULL "
    "OR new_amount - previous_amount = amount_delta"
)
