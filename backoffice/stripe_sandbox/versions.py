"""Stripe API versions: which ones exist, and what an event looks like in a version older than the account's.

The sandbox keeps every object and event in the account's version, a basil-family one. Stripe renders an
event for a webhook endpoint pinned to another version by undoing, newest first, each breaking change
released after that version; `render_event` does the same with the changes listed here. Within the basil
family (2025-03-31.basil to 2026-10-28.endive) the sandbox's shapes do not differ, so only the label moves.

Fields that moved to another object (an invoice's `charge`, a charge's `invoice`) are read back from the
related objects through a `Lookup`, as they are when the event is rendered.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from backoffice.stripe_sandbox.events import previous_attributes

BASIL = "2025-03-31.basil"
TAX_PERCENT_REMOVED = "2020-08-27"
CHARGE_REFUNDS_COLLAPSED = "2022-11-15"

# Every version the sandbox can render, oldest first: 2020-03-02 is the oldest shape it knows (the
# supabase envelopes), and 2026-10-28.endive is the version the stripe 16 SDK pins.
KNOWN_VERSIONS: tuple[str, ...] = (
    "2020-03-02", "2020-08-27", "2022-08-01", "2022-11-15", "2023-08-16", "2023-10-16",
    "2024-04-10", "2024-06-20", "2024-09-30.acacia", "2024-10-28.acacia", "2024-11-20.acacia",
    "2024-12-18.acacia", "2025-01-27.acacia", "2025-02-24.acacia",
    "2025-03-31.basil", "2025-04-30.basil", "2025-05-28.basil", "2025-06-30.basil", "2025-07-30.basil",
    "2025-08-27.basil", "2025-09-30.clover", "2025-10-29.clover", "2025-11-17.clover", "2025-12-15.clover",
    "2026-01-28.clover", "2026-02-25.clover", "2026-03-25.dahlia", "2026-04-22.dahlia", "2026-05-27.dahlia",
    "2026-06-24.dahlia", "2026-07-29.dahlia", "2026-08-26.endive", "2026-09-30.endive", "2026-10-28.endive",
)

Obj = dict[str, Any]


class Lookup(Protocol):
    """Where related objects are found (the sandbox's store)."""

    def find(self, object_id: str) -> Obj | None: ...

    def all(self, kind: str) -> list[Obj]: ...


class NoLookup:
    """A lookup that knows no objects: moved fields that need one render as null."""

    def find(self, object_id: str) -> Obj | None:
        return None

    def all(self, kind: str) -> list[Obj]:
        return []


Downgrade = Callable[[Obj, Lookup], None]


def is_known(version: str) -> bool:
    return version in KNOWN_VERSIONS


def release(version: str) -> str:
    """Return the date part, which orders versions (`2025-03-31.basil` → `2025-03-31`)."""
    return version[:10]


def is_basil_family(version: str) -> bool:
    """Tell whether a version has the basil-era shapes the sandbox stores."""
    return is_known(version) and release(version) >= release(BASIL)


# --- breaking changes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionChange:
    """One breaking change: from `version` on, objects of `object_type` have the new shape.

    `downgrade` rewrites one object, in place, to the shape it had before.
    """

    version: str
    object_type: str
    summary: str
    downgrade: Downgrade


CHANGES: list[VersionChange] = []


def change(version: str, object_types: Iterable[str], summary: str) -> Callable[[Downgrade], Downgrade]:
    """Register a downgrade for a breaking change released in `version`."""
    def register(downgrade: Downgrade) -> Downgrade:
        for object_type in object_types:
            CHANGES.append(VersionChange(version, object_type, summary, downgrade))
        return downgrade
    return register


def changes_between(older: str, newer: str) -> list[VersionChange]:
    """Return the changes released after `older` up to `newer`, newest first (the order to undo them)."""
    selected = [c for c in CHANGES if release(older) < release(c.version) <= release(newer)]
    return sorted(selected, key=lambda c: release(c.version), reverse=True)


# --- rendering ---------------------------------------------------------------------------------------


def render_event(event: Obj, api_version: str, lookup: Lookup | None = None) -> Obj:
    """Return `event` as Stripe sends it to an endpoint pinned to `api_version`."""
    if not is_known(api_version):
        raise ValueError(f"unknown Stripe API version {api_version!r}")
    rendered = copy.deepcopy(event)
    rendered["api_version"] = api_version
    changes = changes_between(api_version, event["api_version"])
    if changes:
        _downgrade_data(rendered["data"], changes, lookup or NoLookup())
    return rendered


def _downgrade_data(data: Obj, changes: list[VersionChange], lookup: Lookup) -> None:
    """Downgrade `data.object` and recompute `previous_attributes` between the downgraded states.

    Diffing the downgraded before and after states, rather than renaming keys in `previous_attributes`,
    gives what Stripe sends: a renewal's basil `{items: {data: [old periods]}}` becomes the old
    `{current_period_start, current_period_end}` without a spurious `items`.
    """
    previous = data.get("previous_attributes")
    before = restore_previous(data["object"], previous) if previous else None
    downgrade(data["object"], changes, lookup)
    if before is not None:
        downgrade(before, changes, lookup)
        data["previous_attributes"] = previous_attributes(before, data["object"])


def restore_previous(after: Obj, previous: Obj) -> Obj:
    """Return the object's state before the change, from its state after and its previous_attributes."""
    before = copy.deepcopy(after)
    _apply_previous(before, previous)
    return before


def _apply_previous(target: Obj, previous: Obj) -> None:
    # The inverse of events.previous_attributes: hashes were diffed key by key, list objects sent their
    # old `data` whole, anything else its old value.
    for key, old in previous.items():
        current = target.get(key)
        if isinstance(old, dict) and isinstance(current, dict):
            if current.get("object") == "list":
                current["data"] = copy.deepcopy(old.get("data"))
            else:
                _apply_previous(current, old)
        else:
            target[key] = copy.deepcopy(old)


def downgrade(node: Any, changes: list[VersionChange], lookup: Lookup) -> None:
    """Apply the changes' downgrades to every object in `node`, parents before their children.

    Parents go first so that they can read what their children still carry in the newer shape (a
    subscription takes its period from its items before the items lose it); whatever a downgrade adds
    (a subscription's `plan`) is then downgraded in turn.
    """
    by_type: dict[str, list[VersionChange]] = {}
    for item in changes:
        by_type.setdefault(item.object_type, []).append(item)
    _walk(node, by_type, lookup)


def _walk(node: Any, by_type: dict[str, list[VersionChange]], lookup: Lookup) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, by_type, lookup)
    elif isinstance(node, dict):
        for item in by_type.get(node.get("object", ""), ()):
            item.downgrade(node, lookup)
        for value in node.values():
            _walk(value, by_type, lookup)


# --- helpers the downgrades share ---------------------------------------------------------------------


def list_object(data: list[Obj], url: str) -> Obj:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


def list_data(value: Any) -> list[Obj]:
    return (value.get("data") or []) if isinstance(value, dict) else []


def resolve(value: Any, lookup: Lookup) -> Obj | None:
    """Return a copy of an expandable field's object, whether it holds an id or the object."""
    if isinstance(value, dict):
        return copy.deepcopy(value)
    if isinstance(value, str):
        found = lookup.find(value)
        return copy.deepcopy(found) if found is not None else None
    return None


def plan_from_price(price: Obj) -> Obj | None:
    """Return the legacy Plan a recurring Price also is (Stripe keeps both views of one id)."""
    recurring = price.get("recurring")
    if not recurring:
        return None
    return {
        "id": price["id"],
        "object": "plan",
        "active": price.get("active"),
        "amount": price.get("unit_amount"),
        "amount_decimal": price.get("unit_amount_decimal"),
        "billing_scheme": price.get("billing_scheme"),
        "created": price.get("created"),
        "currency": price.get("currency"),
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": price.get("livemode", False),
        "metadata": copy.deepcopy(price.get("metadata") or {}),
        "meter": recurring.get("meter"),
        "nickname": price.get("nickname"),
        "product": price.get("product"),
        "tiers_mode": price.get("tiers_mode"),
        "transform_usage": None,
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def tax_amount(tax: Obj) -> Obj:
    """Return a basil `taxes[]`/`total_taxes[]` entry as the older `tax_amounts[]` entry."""
    return {
        "amount": tax.get("amount"),
        "inclusive": tax.get("tax_behavior") == "inclusive",
        "tax_rate": (tax.get("tax_rate_details") or {}).get("tax_rate"),
        "taxability_reason": tax.get("taxability_reason"),
        "taxable_amount": tax.get("taxable_amount"),
    }


def first_discount(discounts: Any, lookup: Lookup) -> Obj | None:
    """Return the single `discount` older versions show: the first of `discounts`, as an object."""
    if not isinstance(discounts, list) or not discounts:
        return None
    return resolve(discounts[0], lookup)


def invoice_payment_of(invoice_id: str, lookup: Lookup) -> Obj | None:
    """Return the invoice's default payment, else its latest one."""
    payments = [p for p in lookup.all("invoice_payment") if p.get("invoice") == invoice_id]
    defaults = [p for p in payments if p.get("is_default")]
    return (defaults or payments or [None])[-1]


# --- 2025-03-31.basil ---------------------------------------------------------------------------------


@change(BASIL, ["subscription"], "billing periods moved from the subscription to its items")
def _subscription_period(subscription: Obj, lookup: Lookup) -> None:
    items = list_data(subscription.get("items"))
    # Before basil every item shared the subscription's period; the first item's is that period.
    first = items[0] if items else {}
    subscription["current_period_start"] = first.get("current_period_start")
    subscription["current_period_end"] = first.get("current_period_end")


@change(BASIL, ["subscription_item"], "billing periods moved from the subscription to its items")
def _item_period(item: Obj, lookup: Lookup) -> None:
    item.pop("current_period_start", None)
    item.pop("current_period_end", None)


@change(BASIL, ["subscription"], "single-item `plan` and `quantity`, and `discount`, left the subscription")
def _subscription_plan_and_discount(subscription: Obj, lookup: Lookup) -> None:
    # Older versions mirror a single-item subscription's plan and quantity at the top (the 2020-03-02
    # envelopes show them); with several items both are null.
    items = list_data(subscription.get("items"))
    only = items[0] if len(items) == 1 else None
    plan = None
    if only is not None:
        plan = resolve(only.get("plan"), lookup) or plan_from_price(resolve(only.get("price"), lookup) or {})
    subscription["plan"] = plan
    subscription["quantity"] = only.get("quantity") if only is not None else None
    subscription["discount"] = first_discount(subscription.get("discounts"), lookup)


@change(BASIL, ["invoice"], "`parent` replaced `subscription`, `subscription_details` and `quote`")
def _invoice_parent(invoice: Obj, lookup: Lookup) -> None:
    parent = invoice.pop("parent", None) or {}
    details = parent.get("subscription_details") or {}
    invoice["subscription"] = details.get("subscription")
    invoice["subscription_details"] = {"metadata": details.get("metadata")} if details else None
    invoice["quote"] = (parent.get("quote_details") or {}).get("quote")
    if details.get("subscription_proration_date") is not None:
        # Stripe sent it only when the invoice previewed prorations at a given date.
        invoice["subscription_proration_date"] = details["subscription_proration_date"]


@change(BASIL, ["invoice"], "payments moved to invoice_payment: no `charge`, `payment_intent`, `paid`")
def _invoice_payment_fields(invoice: Obj, lookup: Lookup) -> None:
    payment = invoice_payment_of(invoice.get("id", ""), lookup) if invoice.get("status") != "draft" else None
    details = (payment or {}).get("payment") or {}
    invoice["charge"] = details.get("charge")
    invoice["payment_intent"] = details.get("payment_intent")
    invoice["paid"] = invoice.get("status") == "paid"
    invoice["paid_out_of_band"] = details.get("type") == "out_of_band"
    # Connect fields: the sandbox has no connected accounts, so they were always null.
    invoice["application_fee_amount"] = None
    invoice["transfer_data"] = None
    invoice.pop("amount_overpaid", None)


@change(BASIL, ["invoice"], "`total_taxes` replaced `tax` and `total_tax_amounts`; `discounts` replaced `discount`")
def _invoice_taxes_and_discount(invoice: Obj, lookup: Lookup) -> None:
    taxes = invoice.pop("total_taxes", None) or []
    invoice["total_tax_amounts"] = [tax_amount(tax) for tax in taxes]
    invoice["tax"] = sum(tax.get("amount") or 0 for tax in taxes) if taxes else None
    invoice["discount"] = first_discount(invoice.get("discounts"), lookup)


@change(BASIL, ["line_item"], "`parent` replaced `type`, `subscription`, `subscription_item` and `proration`")
def _line_parent(line: Obj, lookup: Lookup) -> None:
    parent = line.pop("parent", None) or {}
    from_subscription = parent.get("subscription_item_details")
    details = from_subscription or parent.get("invoice_item_details") or {}
    line["type"] = "subscription" if from_subscription else "invoiceitem"
    line["subscription"] = details.get("subscription")
    line["subscription_item"] = details.get("subscription_item")
    line["invoice_item"] = details.get("invoice_item")
    line["proration"] = bool(details.get("proration"))
    line["proration_details"] = copy.deepcopy(details.get("proration_details")) or {"credited_items": None}


@change(BASIL, ["line_item"], "`pricing` replaced `price` and `plan` on invoice lines")
def _line_price(line: Obj, lookup: Lookup) -> None:
    pricing = line.pop("pricing", None) or {}
    price = resolve((pricing.get("price_details") or {}).get("price"), lookup)
    line["price"] = price
    line["plan"] = plan_from_price(price) if price else None


@change(BASIL, ["line_item", "credit_note_line_item"], "`taxes` replaced `tax_amounts` and `tax_rates`")
def _line_taxes(line: Obj, lookup: Lookup) -> None:
    taxes = line.pop("taxes", None) or []
    line["tax_amounts"] = [tax_amount(tax) for tax in taxes]
    if line.get("object") == "line_item":
        rates = (resolve(tax_amount(tax)["tax_rate"], lookup) for tax in taxes)
        line["tax_rates"] = [rate for rate in rates if rate is not None]


@change(BASIL, ["credit_note"], "`refunds` replaced `refund`; `total_taxes` replaced `tax_amounts`")
def _credit_note_refund_and_taxes(note: Obj, lookup: Lookup) -> None:
    refunds = note.pop("refunds", None) or []
    note["refund"] = refunds[0].get("refund") if refunds else None
    note["tax_amounts"] = [tax_amount(tax) for tax in note.pop("total_taxes", None) or []]


@change(BASIL, ["charge"], "the charge no longer names its invoice")
def _charge_invoice(charge: Obj, lookup: Lookup) -> None:
    paying = [p for p in lookup.all("invoice_payment") if (p.get("payment") or {}).get("charge") == charge.get("id")]
    charge["invoice"] = paying[-1].get("invoice") if paying else None


@change(BASIL, ["charge"], "`destination`, `dispute` and `order` left the charge")
def _charge_legacy_links(charge: Obj, lookup: Lookup) -> None:
    # Their exact removal versions predate basil; every pre-basil shape the sandbox renders has them,
    # and without Connect, disputes or Orders they were always null.
    for key in ("destination", "dispute", "order"):
        charge[key] = None


@change(BASIL, ["plan"], "`aggregate_usage` left plans")
def _plan_aggregate_usage(plan: Obj, lookup: Lookup) -> None:
    plan["aggregate_usage"] = None


@change(BASIL, ["price"], "`aggregate_usage` left recurring prices")
def _price_aggregate_usage(price: Obj, lookup: Lookup) -> None:
    if isinstance(price.get("recurring"), dict):
        price["recurring"]["aggregate_usage"] = None


# --- 2022-11-15 -----------------------------------------------------------------------------------------


@change(CHARGE_REFUNDS_COLLAPSED, ["charge"], "a charge's `refunds` are no longer included by default")
def _charge_refunds(charge: Obj, lookup: Lookup) -> None:
    refunds = [copy.deepcopy(r) for r in lookup.all("refund") if r.get("charge") == charge.get("id")]
    charge["refunds"] = list_object(refunds[::-1], f"/v1/charges/{charge.get('id')}/refunds")


# --- 2020-08-27 -----------------------------------------------------------------------------------------


@change(TAX_PERCENT_REMOVED, ["subscription", "invoice"], "`tax_percent` removed in favour of tax rates")
def _tax_percent(obj: Obj, lookup: Lookup) -> None:
    obj["tax_percent"] = None


@change(TAX_PERCENT_REMOVED, ["plan"], "a plan's `tiers` are no longer included by default")
def _plan_tiers(plan: Obj, lookup: Lookup) -> None:
    plan["tiers"] = None


@change(TAX_PERCENT_REMOVED, ["customer"], "a customer's `sources`, `subscriptions` and `tax_ids` are no "
        "longer included by default")
def _customer_lists(customer: Obj, lookup: Lookup) -> None:
    if customer.get("deleted"):
        return
    customer_id = customer.get("id")
    subscriptions = [copy.deepcopy(s) for s in lookup.all("subscription")
                     if s.get("customer") == customer_id and s.get("status") != "canceled"]
    tax_ids = [copy.deepcopy(t) for t in lookup.all("tax_id")
               if t.get("customer") == customer_id and not t.get("deleted")]
    customer["sources"] = list_object([], f"/v1/customers/{customer_id}/sources")
    customer["subscriptions"] = list_object(subscriptions[::-1], f"/v1/customers/{customer_id}/subscriptions")
    customer["tax_ids"] = list_object(tax_ids[::-1], f"/v1/customers/{customer_id}/tax_ids")
