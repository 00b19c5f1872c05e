"""Reading Stripe payloads of each API version family (DESIGN §4.2).

Stripe changes where fields live between versions; the ledger rules read them only through a resolver,
chosen by the event's exact `api_version` from an explicit allow-list. Two families cover every version
we accept: the pre-2025 shapes (billing period on the subscription, `invoice.subscription`, one
`discount`) and basil and later (periods on the items, `invoice.parent.subscription_details`, a list of
`discounts`). A version outside the allow-list has no resolver: its events are archived, not replayed.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

BASIL = "2025-03-31"


@dataclass(frozen=True)
class Item:
    """One subscription item (or schedule phase item) as far as MRR cares."""

    price_id: str | None
    quantity: int
    # From the payload when the price is expanded there; the catalog fills what is missing.
    unit_amount: int | None
    currency: str | None
    interval: str | None
    interval_count: int | None
    tax_behavior: str | None
    # `metadata.plan` of an expanded price, when the payload carries it.
    plan: str | None = None


def ref_id(value: Any) -> str | None:
    """Return the id of a reference, expanded (an object) or not (a string)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def list_data(value: Any) -> list[Any]:
    """Return the `data` of a Stripe list, or the list itself."""
    if isinstance(value, dict):
        value = value.get("data")
    return value if isinstance(value, list) else []


def _item(raw: Obj) -> Item:
    price = raw.get("price") if isinstance(raw.get("price"), dict) else None
    if price is None and isinstance(raw.get("plan"), dict):
        price = raw["plan"]  # a plan object carries the same amount and interval fields
    price = price or {}  # unexpanded: the catalog fills in the fields
    recurring = price.get("recurring") or {}
    quantity = raw.get("quantity")
    return Item(
        price_id=ref_id(raw.get("price")) or ref_id(raw.get("plan")),
        quantity=quantity if isinstance(quantity, int) else 1,
        # A plan names its unit amount `amount`; a price always has `unit_amount` (null when tiered).
        unit_amount=price.get("unit_amount", price.get("amount")),
        currency=(price.get("currency") or "").upper() or None,
        interval=recurring.get("interval") or price.get("interval"),
        interval_count=recurring.get("interval_count") or price.get("interval_count"),
        tax_behavior=price.get("tax_behavior"),
        plan=(price.get("metadata") or {}).get("plan") or None,
    )


class Resolver:
    """Field access common to both families; the subclasses hold what moved."""

    family = ""

    def subscription_items(self, subscription: Obj) -> list[Item]:
        return [_item(raw) for raw in list_data(subscription.get("items")) if isinstance(raw, dict)]

    def phase_items(self, phase: Obj) -> list[Item]:
        return [_item(raw) for raw in phase.get("items") or [] if isinstance(raw, dict)]

    def subscription_currency(self, subscription: Obj) -> str | None:
        currency = subscription.get("currency")
        if isinstance(currency, str) and currency:
            return currency.upper()
        for item in self.subscription_items(subscription):
            if item.currency:
                return item.currency
        return None

    def discount_refs(self, subscription: Obj) -> list[Any]:
        """The subscription's discounts: objects when the payload has them, else ids for an as-of lookup."""
        raise NotImplementedError

    def coupon_of(self, discount: Obj) -> Any:
        """A discount's coupon: an object or an id."""
        return discount.get("coupon") or (discount.get("source") or {}).get("coupon")

    def period_end(self, subscription: Obj) -> int | None:
        raise NotImplementedError

    def invoice_subscription(self, invoice: Obj) -> str | None:
        raise NotImplementedError


class PreBasilResolver(Resolver):
    family = "pre-2025"

    def discount_refs(self, subscription: Obj) -> list[Any]:
        single = subscription.get("discount") if isinstance(subscription.get("discount"), dict) else None
        discounts = subscription.get("discounts")
        if isinstance(discounts, list) and discounts:
            # Listed by id, with the first one expanded beside them in `discount`: use the object in hand.
            return [single if single is not None and ref_id(ref) == single.get("id") else ref for ref in discounts]
        return [single] if single is not None else []

    def period_end(self, subscription: Obj) -> int | None:
        return subscription.get("current_period_end")

    def invoice_subscription(self, invoice: Obj) -> str | None:
        return ref_id(invoice.get("subscription"))


class BasilResolver(Resolver):
    family = "basil"

    def discount_refs(self, subscription: Obj) -> list[Any]:
        discounts = subscription.get("discounts")
        return list(discounts) if isinstance(discounts, list) else []

    def period_end(self, subscription: Obj) -> int | None:
        ends = [raw.get("current_period_end") for raw in list_data(subscription.get("items")) if isinstance(raw, dict)]
        ends = [end for end in ends if isinstance(end, int)]
        return min(ends) if ends else None

    def invoice_subscription(self, invoice: Obj) -> str | None:
        details = (invoice.get("parent") or {}).get("subscription_details") or {}
        return ref_id(details.get("subscription"))


PRE_BASIL = PreBasilResolver()
BASIL_FAMILY = BasilResolver()


class ApiVersions:
    """The allow-list: exact version strings, each mapped to its family's resolver."""

    def __init__(self, allowed: Iterable[str]):
        self.allowed = frozenset(allowed)
        # Each allowed version's family, decided once: a replay asks for every event.
        self._resolvers: dict[str, Resolver] = {version: _family(version) for version in self.allowed if version}

    def resolver(self, version: str | None) -> Resolver | None:
        """Return the resolver for an exact version string, or None when it is not allowed."""
        return self._resolvers.get(version) if version else None


def _family(version: str) -> Resolver:
    return BASIL_FAMILY if version[:10] >= BASIL else PRE_BASIL
