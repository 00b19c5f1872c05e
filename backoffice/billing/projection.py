"""Subscription fields read from a customer's events besides MRR: payment method, billing info, payment trouble.

Plain functions over the as-of objects (the latest `data.object` of each id) and the ordered events.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from backoffice.billing.ordering import ArchivedEvent
from backoffice.billing.resolvers import ref_id

Obj = dict[str, Any]
TROUBLED = frozenset({"past_due", "unpaid", "incomplete"})
ADDRESS_FIELDS = ("line1", "line2", "postal_code", "city", "state", "country")


def payment_method(customer: Obj | None, objects: dict[str, Obj]) -> dict[str, Any] | None:
    """The customer's default card as the seed shows it (Link: brand link, last4 ****, expiry 0/0)."""
    if not customer:
        return None
    default = ref_id((customer.get("invoice_settings") or {}).get("default_payment_method"))
    method = objects.get(default) if default else None
    if method is None:
        attached = [o for o in objects.values() if o.get("object") == "payment_method"
                    and ref_id(o.get("customer")) == customer.get("id")]
        method = max(attached, key=lambda o: o.get("created") or 0) if attached else None
    if method is None:
        return None
    if method.get("type") == "link":
        return {"brand": "link", "last4": "****", "exp_month": 0, "exp_year": 0}
    card = method.get("card") or {}
    return {"brand": card.get("brand"), "last4": card.get("last4"), "exp_month": card.get("exp_month"),
            "exp_year": card.get("exp_year")}


def billing_info(customer: Obj | None, objects: dict[str, Obj]) -> dict[str, Any] | None:
    """Name, address, email and VAT id of the customer."""
    if not customer:
        return None
    address = customer.get("address") or {}
    tax_ids = [o for o in objects.values() if o.get("object") == "tax_id" and ref_id(o.get("customer")) == customer.get("id")]
    listed = [t for t in (customer.get("tax_ids") or {}).get("data", []) if isinstance(t, dict)] \
        if isinstance(customer.get("tax_ids"), dict) else []
    latest = max(tax_ids or listed, key=lambda t: t.get("created") or 0) if (tax_ids or listed) else None
    return {"name": customer.get("name"), "email": customer.get("email"),
            "address": {name: address.get(name) for name in ADDRESS_FIELDS} if address else None,
            "tax_id": (latest or {}).get("value")}


def first_payment_failed_at(events: Iterable[ArchivedEvent]) -> datetime | None:
    """When the current run of payment trouble began (set on past_due/unpaid/incomplete, cleared when active)."""
    since = None
    for event in events:
        obj = event.object
        if obj.get("object") != "subscription":
            continue
        status = obj.get("status")
        if status in TROUBLED and since is None:
            since = datetime.fromtimestamp(event.created, UTC)
        elif status == "active":
            since = None
    return since


def cancellation_reason(subscription: Obj | None) -> str | None:
    """Why a canceling or canceled subscription ends: the customer's feedback, else Stripe's reason."""
    if not subscription or not (subscription.get("cancel_at_period_end") or subscription.get("status") == "canceled"):
        return None
    details = subscription.get("cancellation_details") or {}
    return details.get("feedback") or details.get("reason") or None
