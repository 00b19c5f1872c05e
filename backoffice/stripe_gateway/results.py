"""What the gateway returns: frozen dataclasses built from Stripe's JSON, in the ledger's units.

Callers never see the SDK's objects: money is Decimal in major units, currencies are upper case (the
database's CHECK) and times are aware UTC datetimes, so every caller converts nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from backoffice.money import to_major


@dataclass(frozen=True)
class CustomerInfo:
    """A Stripe customer, or what is left of one after deletion (`deleted`, the id, nothing else)."""

    id: str
    deleted: bool
    tenant_id: str | None
    email: str | None
    name: str | None
    currency: str | None
    created: datetime | None
    raw: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class PriceInfo:
    """A price with the plan it sells (`metadata.plan` of the price, else of its product)."""

    id: str
    product_id: str | None
    plan: str | None
    unit_amount: Decimal | None
    currency: str
    interval: str | None
    interval_count: int | None
    tax_behavior: str | None
    active: bool


@dataclass(frozen=True)
class EventsPage:
    """One page of `events.list`, newest first as Stripe sends it, events as plain dicts."""

    events: list[dict[str, Any]]
    has_more: bool


def customer_info(customer: dict[str, Any]) -> CustomerInfo:
    """Type a customer's JSON."""
    return CustomerInfo(
        id=customer["id"],
        deleted=bool(customer.get("deleted")),
        tenant_id=_metadata(customer, "tenant_id"),
        email=customer.get("email"),
        name=customer.get("name"),
        currency=_currency(customer.get("currency")),
        created=timestamp(customer.get("created")),
        raw=customer,
    )


def price_info(price: dict[str, Any]) -> PriceInfo:
    """Type a price's JSON; its product may be expanded (a dict) or an id."""
    product = price.get("product")
    product_id = product.get("id") if isinstance(product, dict) else product
    plan = _plan(price)
    if plan is None and isinstance(product, dict):
        plan = _plan(product)
    currency = _currency(price["currency"]) or ""
    amount = price.get("unit_amount")
    if amount is None:
        amount = price.get("unit_amount_decimal")  # prices with sub-cent amounts carry only the decimal string
    recurring = price.get("recurring") or {}
    return PriceInfo(
        id=price["id"],
        product_id=product_id,
        plan=plan,
        unit_amount=to_major(amount, currency),
        currency=currency,
        interval=recurring.get("interval"),
        interval_count=recurring.get("interval_count"),
        tax_behavior=price.get("tax_behavior"),
        active=bool(price.get("active")),
    )


def timestamp(seconds: int | None) -> datetime | None:
    """Turn Stripe's Unix seconds into an aware UTC datetime."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _plan(obj: dict[str, Any]) -> str | None:
    # Plans are the catalog's lower-case keys (DESIGN §3); an empty value names no plan.
    plan = (_metadata(obj, "plan") or "").strip().lower()
    return plan or None


def _metadata(obj: dict[str, Any], key: str) -> str | None:
    value = (obj.get("metadata") or {}).get(key)
    return value or None


def _currency(code: str | None) -> str | None:
    return code.upper() if code else None
