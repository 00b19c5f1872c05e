"""Subscriptions: create and pay, change items with prorations, cancel now or at period end, renew, dunning.

Periods live on the items (basil). Every item shares the subscription's billing cycle, anchored on
`billing_cycle_anchor` like Stripe's: a monthly subscription started on 31 January renews on 28 February,
then on 31 March. Discounts come from coupons: `forever` ones reduce every invoice, a `once` one only the
first invoice it meets, a `repeating` one those of its first months.
"""
from __future__ import annotations

import calendar
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from backoffice.stripe_sandbox.api import Router, paginate
from backoffice.stripe_sandbox.documents import ZERO_DECIMAL_CURRENCIES
from backoffice.stripe_sandbox.errors import (
    CardDeclined,
    InvalidRequest,
    ResourceMissing,
    parameter_invalid,
    parameter_missing,
)
from backoffice.stripe_sandbox.params import Params, to_int
from backoffice.stripe_sandbox.resources.common import apply_metadata
from backoffice.stripe_sandbox.resources.invoices import (
    DAY,
    PAYABLE,
    LineSpec,
    announce_and_finalize,
    collect,
    draft_invoice,
    payment_method_for,
    round_minor,
    subscription_of,
    void,
)
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()

Obj = dict[str, Any]
ENDED = {"canceled", "incomplete_expired"}
RENEWING = {"active", "past_due", "unpaid", "trialing"}
STATUSES = ENDED | RENEWING | {"incomplete", "paused"}
PAYMENT_BEHAVIORS = {"allow_incomplete", "error_if_incomplete", "default_incomplete"}
PRORATION_BEHAVIORS = {"create_prorations", "always_invoice", "none"}
FEEDBACK = {"customer_service", "low_quality", "missing_features", "other", "switched_service", "too_complex",
            "too_expensive", "unused"}
# An incomplete subscription whose first invoice stays unpaid this long expires (Stripe: 23 hours).
INCOMPLETE_LIFETIME = 23 * 3600
# Where dunning ends when the last retry fails; a sandbox's settings may say otherwise with a
# `subscription_status_after_retries` of "canceled", "unpaid" or "past_due" (leave it past due).
DEFAULT_STATUS_AFTER_RETRIES = "canceled"


# --- the calendar ----------------------------------------------------------------------------------------------
def add_intervals(anchor: int, recurring: Obj, count: int) -> int:
    """Return the instant `count` billing intervals after `anchor`, on the anchor's day of month where it exists."""
    steps = recurring["interval_count"] * count
    if recurring["interval"] in ("day", "week"):
        return anchor + steps * DAY * (7 if recurring["interval"] == "week" else 1)
    moment = datetime.fromtimestamp(anchor, UTC)
    years, month_index = divmod(moment.month - 1 + steps * (12 if recurring["interval"] == "year" else 1), 12)
    year, month = moment.year + years, month_index + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def boundary_after(anchor: int, instant: int, recurring: Obj) -> int:
    """Return the first billing boundary (the anchor plus whole intervals) after `instant`."""
    count = 1
    while (boundary := add_intervals(anchor, recurring, count)) <= instant:
        count += 1
    return boundary


def current_period(sub: Obj) -> tuple[int, int]:
    """Return the current period (every item shares the subscription's billing cycle)."""
    item = sub["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]


# --- objects ---------------------------------------------------------------------------------------------------
def plan_of(price: Obj) -> Obj:
    """Return the legacy `plan` Stripe still shows next to a recurring price."""
    recurring = price["recurring"]
    return {"id": price["id"], "object": "plan", "active": price["active"], "amount": price["unit_amount"],
            "amount_decimal": price["unit_amount_decimal"], "billing_scheme": price["billing_scheme"],
            "created": price["created"], "currency": price["currency"], "interval": recurring["interval"],
            "interval_count": recurring["interval_count"], "livemode": False, "metadata": dict(price["metadata"]),
            "meter": None, "nickname": price["nickname"], "product": price["product"], "tiers_mode": None,
            "transform_usage": None, "trial_period_days": None, "usage_type": recurring["usage_type"]}


def new_item(sb: Sandbox, subscription_id: str, price: Obj, quantity: int, period: tuple[int, int],
             metadata: dict[str, str] | None = None) -> Obj:
    return {"id": sb.new_id("si", 14), "object": "subscription_item", "billing_thresholds": None,
            "created": sb.now(), "current_period_end": period[1], "current_period_start": period[0],
            "discounts": [], "metadata": metadata or {}, "plan": plan_of(price), "price": copy.deepcopy(price),
            "quantity": quantity, "subscription": subscription_id, "tax_rates": []}


def _new_subscription(sb: Sandbox, customer: Obj, currency: str, method_id: str | None,
                      description: str | None) -> Obj:
    subscription_id, now = sb.new_id("sub"), sb.now()
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": method_id,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "custom_fields": None, "description": None, "footer": None,
                             "issuer": {"type": "self"}},
        "items": {"object": "list", "data": [], "has_more": False,
                  "url": f"/v1/subscription_items?subscription={subscription_id}"},
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "incomplete",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


# --- reading requests ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemRequest:
    """One entry of `items[]`: an existing item to change or delete (`id`), or a new price to add."""

    item_id: str | None = None
    price: Obj | None = None
    quantity: int | None = None
    deleted: bool = False
    metadata: dict[str, str] | None = None


NEW_ITEM_FIELDS = {"price", "quantity", "metadata"}
ITEM_FIELDS = NEW_ITEM_FIELDS | {"id", "deleted"}


def read_items(sb: Sandbox, params: Params, *, creating: bool) -> list[ItemRequest]:
    """Read `items[]`, checking each price exists, is active and recurring."""
    entries = params.array("items")
    if creating and not entries:
        raise parameter_missing("items")
    return [_read_item(sb, entry, f"items[{index}]", creating) for index, entry in enumerate(entries)]


def _read_item(sb: Sandbox, entry: Any, param: str, creating: bool) -> ItemRequest:
    if not isinstance(entry, dict):
        raise parameter_invalid(param, f"Invalid object: {param} must be a hash")
    unknown = sorted(set(entry) - (NEW_ITEM_FIELDS if creating else ITEM_FIELDS))
    if unknown:
        raise parameter_invalid(f"{param}[{unknown[0]}]", f"Received unknown parameter: {param}[{unknown[0]}]",
                                code="parameter_unknown")
    price = recurring_price(sb, entry["price"], f"{param}[price]") if entry.get("price") else None
    if price is None and not entry.get("id"):
        raise parameter_missing(f"{param}[price]")
    quantity = to_int(entry["quantity"], f"{param}[quantity]", minimum=0) if "quantity" in entry else None
    metadata = entry.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise parameter_invalid(f"{param}[metadata]", "Invalid metadata: metadata must be a hash of strings")
    return ItemRequest(entry.get("id") or None, price, quantity, entry.get("deleted") in ("true", True), metadata)


def recurring_price(sb: Sandbox, price_id: Any, param: str) -> Obj:
    """Return an active recurring price, or Stripe's error for the parameter that named it."""
    price = sb.store.get("price", str(price_id), param=param)
    if price["type"] != "recurring":
        raise parameter_invalid(param, f"The price specified ({price['id']}) is set to `type=one_time` but this field "
                                       "only accepts prices with `type=recurring`.")
    if not price["active"]:
        raise parameter_invalid(param, f"The price specified ({price['id']}) is inactive. This field only accepts "
                                       "active prices.")
    return price


def choice(params: Params, name: str, allowed: set[str], default: str) -> str:
    """Read a parameter that takes one of a few values."""
    value = params.text(name, default) or default
    if value not in allowed:
        raise parameter_invalid(name, f"Invalid {name}: must be one of {', '.join(sorted(allowed))}")
    return value


def _attached_payment_method(sb: Sandbox, customer: Obj, method_id: str | None) -> str | None:
    if not method_id:
        return None
    method = sb.store.get("payment_method", method_id, param="default_payment_method")
    if method["customer"] != customer["id"]:
        raise parameter_invalid("default_payment_method",
                                f"The payment method `{method_id}` must be attached to the customer.")
    return method_id


def _cancellation_details(params: Params) -> Obj:
    details = params.hash("cancellation_details") or {}
    unknown = sorted(set(details) - {"comment", "feedback"})
    if unknown:
        raise parameter_invalid(f"cancellation_details[{unknown[0]}]",
                                f"Received unknown parameter: cancellation_details[{unknown[0]}]",
                                code="parameter_unknown")
    if details.get("feedback") and details["feedback"] not in FEEDBACK:
        raise parameter_invalid("cancellation_details[feedback]", "Invalid cancellation_details[feedback]: must be "
                                f"one of {', '.join(sorted(FEEDBACK))}")
    return {key: (value or None) for key, value in details.items()}


# --- discounts -------------------------------------------------------------------------------------------------
def read_coupons(sb: Sandbox, params: Params, currency: str) -> list[Obj]:
    """Read `discounts[][coupon]` (and the older `coupon`), checking each can discount this subscription."""
    named: list[tuple[str, str]] = []
    for index, entry in enumerate(params.array("discounts")):
        if not isinstance(entry, dict) or not entry.get("coupon"):
            raise parameter_invalid(f"discounts[{index}]", "The sandbox applies discounts by coupon: pass "
                                                            f"discounts[{index}][coupon].")
        named.append((str(entry["coupon"]), f"discounts[{index}][coupon]"))
    if params.text("coupon"):
        named.append((params.text("coupon") or "", "coupon"))
    return [_usable_coupon(sb, coupon_id, param, currency) for coupon_id, param in named]


def _usable_coupon(sb: Sandbox, coupon_id: str, param: str, currency: str) -> Obj:
    coupon = sb.store.get("coupon", coupon_id, param=param)
    if not coupon["valid"] or (coupon["max_redemptions"] is not None
                               and coupon["times_redeemed"] >= coupon["max_redemptions"]):
        raise parameter_invalid(param, f"Coupon expired: {coupon_id}")
    if coupon["amount_off"] is not None and coupon["duration"] == "forever":
        # 2025-03-31.basil: fixed-amount coupons that never end no longer apply to subscriptions.
        raise parameter_invalid(param, "Coupons with `amount_off` and `duration: forever` cannot be applied to "
                                       "subscriptions. Apply them to invoices instead.")
    if coupon["amount_off"] is not None and coupon["currency"] != currency:
        raise parameter_invalid(param, f"The coupon `{coupon_id}` is in {coupon['currency']}, not {currency}.")
    return coupon


def attach_discount(sb: Sandbox, sub: Obj, coupon: Obj) -> Obj:
    """Apply a coupon to a subscription as a discount (announced by the caller: customer.discount.created)."""
    now = sb.now()
    months = coupon["duration_in_months"]
    discount = sb.store.add({
        "id": sb.new_id("di"), "object": "discount", "checkout_session": None, "customer": sub["customer"],
        "customer_account": None,
        "end": add_intervals(now, {"interval": "month", "interval_count": months}, 1) if months else None,
        "invoice": None, "invoice_item": None, "promotion_code": None,
        "source": {"coupon": coupon["id"], "type": "coupon"}, "start": now, "subscription": sub["id"],
        "subscription_item": None,
    })
    sb.snapshot(coupon)  # Stripe counts redemptions without a coupon.updated event
    coupon["times_redeemed"] += 1
    sub["discounts"].append(discount["id"])
    return discount


def discounts_in_force(sb: Sandbox, sub: Obj) -> list[Obj]:
    """Return the subscription's discounts that still apply to a new invoice."""
    discounts = [sb.store.get("discount", discount_id) for discount_id in sub["discounts"]]
    return [discount for discount in discounts if _in_force(sb, discount)]


def _in_force(sb: Sandbox, discount: Obj) -> bool:
    duration = sb.store.get("coupon", discount["source"]["coupon"])["duration"]
    if duration == "once":
        return not any(discount["id"] in invoice["discounts"] for invoice in sb.store.all("invoice")
                       if invoice["customer"] == discount["customer"])
    return discount["end"] is None or sb.now() < discount["end"]


def _drop_ended_discounts(sb: Sandbox, sub: Obj) -> None:
    """Remove discounts that will not apply again (a used `once`, an expired `repeating`).

    Event: customer.discount.deleted for each; the caller's customer.subscription.updated shows `discounts`.
    """
    in_force = {discount["id"] for discount in discounts_in_force(sb, sub)}
    for discount_id in [d for d in sub["discounts"] if d not in in_force]:
        sub["discounts"].remove(discount_id)
        sb.emit("customer.discount.deleted", sb.store.get("discount", discount_id))


# --- billing lines ---------------------------------------------------------------------------------------------
def _money(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL_CURRENCIES:
        return f"{currency.upper()} {amount}"
    return f"{currency.upper()} {Decimal(amount).scaleb(-2):.2f}"


def _product_name(sb: Sandbox, price: Obj) -> str:
    product = sb.store.find(price["product"])
    return product["name"] if product else price["product"]


def _quantity_prefix(quantity: int) -> str:
    return f"{quantity} × " if quantity != 1 else ""


def period_line(sb: Sandbox, item: Obj) -> LineSpec:
    """Bill an item's current period in full: "1 × Premium (at EUR 99.00 / month)"."""
    price, quantity = item["price"], item["quantity"]
    recurring = price["recurring"]
    every = recurring["interval"] if recurring["interval_count"] == 1 else \
        f"every {recurring['interval_count']} {recurring['interval']}s"
    description = (f"{quantity} × {_product_name(sb, price)} "
                   f"(at {_money(price['unit_amount'], price['currency'])} / {every})")
    return LineSpec(price, quantity, price["unit_amount"] * quantity,
                    (item["current_period_start"], item["current_period_end"]), description, item["id"])


def proration_line(sb: Sandbox, item: Obj, *, credit: bool) -> LineSpec:
    """Prorate an item over what is left of its period: a credit for the old state, a charge for the new one."""
    start, end = item["current_period_start"], item["current_period_end"]
    now = sb.now()
    full = item["price"]["unit_amount"] * item["quantity"]
    amount = round_minor(Decimal(full) * (end - now) / (end - start))
    when = datetime.fromtimestamp(now, UTC).strftime("%d %b %Y")
    what = f"{_quantity_prefix(item['quantity'])}{_product_name(sb, item['price'])}"
    description = f"{'Unused' if credit else 'Remaining'} time on {what} after {when}"
    return LineSpec(item["price"], item["quantity"], -amount if credit else amount, (now, end), description,
                    item["id"], proration=True)


def _draft_period_invoice(sb: Sandbox, sub: Obj, reason: str, billed_period: tuple[int, int] | None = None) -> Obj:
    customer = sb.store.get("customer", sub["customer"])
    lines = [period_line(sb, item) for item in sub["items"]["data"]]
    return draft_invoice(sb, customer, lines, billing_reason=reason, subscription=sub,
                         discounts=discounts_in_force(sb, sub), period=billed_period)


# --- create ----------------------------------------------------------------------------------------------------
CREATE_PARAMS = {"customer", "items", "default_payment_method", "discounts", "coupon", "metadata", "payment_behavior",
                 "collection_method", "description", "cancel_at_period_end", "proration_behavior", "off_session"}


@router.add("POST", "/v1/subscriptions", CREATE_PARAMS)
def create_subscription(sb: Sandbox, params: Params) -> Obj:
    """Create a subscription and bill its first period at once.

    Events: customer.subscription.created, [customer.discount.created], invoice.created, invoice.finalized,
    then the payment's (invoices.collect). The created event shows the subscription as the request leaves it:
    active once its first invoice is paid, else incomplete (no customer.subscription.updated in between).
    """
    customer = sb.store.get("customer", params.text("customer", required=True) or "", param="customer")
    choice(params, "collection_method", {"charge_automatically"}, "charge_automatically")  # no send_invoice here
    behavior = choice(params, "payment_behavior", PAYMENT_BEHAVIORS, "allow_incomplete")
    requests = read_items(sb, params, creating=True)
    currency = _shared_currency([request.price for request in requests if request.price])
    coupons = read_coupons(sb, params, currency)
    method_id = _attached_payment_method(sb, customer, params.text("default_payment_method"))
    sub = sb.store.add(_new_subscription(sb, customer, currency, method_id, params.text("description")))
    apply_metadata(sub, params)
    _add_items(sb, sub, requests)
    if params.boolean("cancel_at_period_end"):
        _set_cancel_at_period_end(sb, sub, True, {})
    discounts = [attach_discount(sb, sub, coupon) for coupon in coupons]
    invoice = _draft_period_invoice(sb, sub, "subscription_create")
    sub["latest_invoice"] = invoice["id"]
    created = sb.emit("customer.subscription.created", sub)
    for discount in discounts:
        sb.emit("customer.discount.created", discount)
    announce_and_finalize(sb, invoice)
    if behavior != "default_incomplete" or invoice["amount_remaining"] == 0:
        _require_payment_method(sb, invoice)
        if not collect(sb, invoice) and behavior == "error_if_incomplete":
            raise CardDeclined()  # and the whole request is undone: no subscription, no events
    if invoice["status"] == "paid":
        sub["status"] = "active"
    # Stripe renders a request's events when the request completes, so its created event, though first, carries
    # the subscription's final state. Events are delivered only after the request commits: rewriting is safe.
    created["data"]["object"] = copy.deepcopy(sub)
    return sub


def _shared_currency(prices: Sequence[Obj]) -> str:
    currencies = {price["currency"] for price in prices}
    if len(currencies) != 1:
        raise InvalidRequest("All prices on a subscription must have the same currency.", param="items")
    return currencies.pop()


def _add_items(sb: Sandbox, sub: Obj, requests: Sequence[ItemRequest]) -> None:
    now = sb.now()
    recurring = _shared_recurring([request.price for request in requests if request.price])
    period = (now, add_intervals(now, recurring, 1))
    for request in requests:
        assert request.price is not None
        sub["items"]["data"].append(new_item(sb, sub["id"], request.price, _quantity(request), period,
                                             request.metadata))


def _quantity(request: ItemRequest) -> int:
    return 1 if request.quantity is None else request.quantity


def _shared_recurring(prices: Sequence[Obj]) -> Obj:
    intervals = {(price["recurring"]["interval"], price["recurring"]["interval_count"]) for price in prices}
    if len(intervals) != 1:
        raise InvalidRequest("Currency and interval fields must match across all prices on a subscription.",
                             param="items")
    return prices[0]["recurring"]


def _require_payment_method(sb: Sandbox, invoice: Obj) -> None:
    if invoice["amount_remaining"] and payment_method_for(sb, invoice) is None:
        raise InvalidRequest("This customer has no attached payment source or default payment method. Please "
                             "consider adding a default payment method.", code="resource_missing")


# --- change ----------------------------------------------------------------------------------------------------
UPDATE_PARAMS = {"items", "proration_behavior", "payment_behavior", "cancel_at_period_end", "cancellation_details",
                 "metadata", "default_payment_method", "description", "off_session"}
# What Stripe lets a request change on a subscription in these states.
ENDED_UPDATABLE = {"metadata", "cancellation_details", "expand"}
INCOMPLETE_UPDATABLE = {"metadata", "default_payment_method", "description", "expand"}


@router.add("POST", "/v1/subscriptions/{subscription_id}", UPDATE_PARAMS)
def update_subscription(sb: Sandbox, params: Params, subscription_id: str) -> Obj:
    """Change a subscription: items (prorated), cancellation at period end, payment method, metadata.

    Events: customer.subscription.updated with what changed in previous_attributes; for an item change that is
    prorated, the proration invoice's events follow (invoice.created, invoice.finalized, the payment's).
    """
    sub = sb.store.get("subscription", subscription_id)
    _check_updatable(sub, params)
    customer = sb.store.get("customer", sub["customer"])
    requests = read_items(sb, params, creating=False)
    proration = choice(params, "proration_behavior", PRORATION_BEHAVIORS, "create_prorations")
    behavior = choice(params, "payment_behavior", PAYMENT_BEHAVIORS, "allow_incomplete")
    before = sb.snapshot(sub)
    apply_metadata(sub, params)
    if "description" in params:
        sub["description"] = params.text("description") or None
    if "default_payment_method" in params:
        sub["default_payment_method"] = _attached_payment_method(sb, customer, params.text("default_payment_method"))
    details = _cancellation_details(params)
    if "cancel_at_period_end" in params:
        _set_cancel_at_period_end(sb, sub, bool(params.boolean("cancel_at_period_end")), details)
    else:
        sub["cancellation_details"].update(details)
    invoice = change_items(sb, sub, requests, proration) if requests else None
    _announce_change(sb, sub, before, invoice, behavior)
    return sub


def update_items(sb: Sandbox, sub: Obj, requests: Sequence[ItemRequest], proration: str) -> None:
    """Change a subscription's items now (a schedule's phase). Events as for an update with `items`."""
    before = sb.snapshot(sub)
    invoice = change_items(sb, sub, requests, proration)
    _announce_change(sb, sub, before, invoice, "allow_incomplete")


def _announce_change(sb: Sandbox, sub: Obj, before: Obj, invoice: Obj | None, behavior: str) -> None:
    if sub != before:
        sb.emit("customer.subscription.updated", sub, before)
    if invoice is None:
        return
    announce_and_finalize(sb, invoice)
    if behavior != "default_incomplete" or invoice["amount_remaining"] == 0:
        if not collect(sb, invoice) and behavior == "error_if_incomplete":
            raise CardDeclined()
    follow_invoice(sb, invoice)


def _check_updatable(sub: Obj, params: Params) -> None:
    if sub["status"] in ENDED and set(params.values) - ENDED_UPDATABLE:
        raise InvalidRequest("A canceled subscription can only update its cancellation_details and metadata.")
    if sub["status"] == "incomplete" and set(params.values) - INCOMPLETE_UPDATABLE:
        raise InvalidRequest("A subscription whose first invoice is unpaid (status `incomplete`) can only update "
                             "its metadata, description and default_payment_method.")


def _set_cancel_at_period_end(sb: Sandbox, sub: Obj, cancel: bool, details: Obj) -> None:
    if cancel and sub["schedule"]:
        raise InvalidRequest(f"The subscription is managed by the subscription schedule `{sub['schedule']}`, and "
                             "updating any cancelation behavior directly is not allowed. Please update the schedule "
                             "instead.")
    if cancel == sub["cancel_at_period_end"]:
        sub["cancellation_details"].update(details)
        return
    sub["cancel_at_period_end"] = cancel
    sub["cancel_at"] = current_period(sub)[1] if cancel else None
    sub["canceled_at"] = sb.now() if cancel else None
    sub["cancellation_details"] = {"comment": None, "feedback": None,
                                   "reason": "cancellation_requested" if cancel else None}
    if cancel:
        sub["cancellation_details"].update(details)


def change_items(sb: Sandbox, sub: Obj, requests: Sequence[ItemRequest], proration: str) -> Obj | None:
    """Apply item changes; return the invoice drafted for them (its caller announces it), if any.

    Prorations are invoiced at once, for `create_prorations` as for `always_invoice` (Stripe would keep the
    former's items for the next renewal). Moving to another interval restarts the billing cycle now and
    bills the new period in full, as Stripe does.
    """
    old_items = copy.deepcopy(sub["items"]["data"])
    new_items = _changed_items(sb, sub, requests)
    recurring = _shared_recurring([item["price"] for item in new_items])
    restart = recurring != _shared_recurring([item["price"] for item in old_items])
    lines = _proration_lines(sb, old_items, new_items, restart) if proration != "none" else []
    if restart:
        now = sb.now()
        sub["billing_cycle_anchor"] = now
        for item in new_items:
            item["current_period_start"], item["current_period_end"] = now, add_intervals(now, recurring, 1)
        lines += [period_line(sb, item) for item in new_items]
    sub["items"]["data"] = new_items
    if not lines:
        return None
    customer = sb.store.get("customer", sub["customer"])
    invoice = draft_invoice(sb, customer, lines, billing_reason="subscription_update", subscription=sub,
                            discounts=discounts_in_force(sb, sub))
    sub["latest_invoice"] = invoice["id"]
    return invoice


def _changed_items(sb: Sandbox, sub: Obj, requests: Sequence[ItemRequest]) -> list[Obj]:
    items = {item["id"]: item for item in sub["items"]["data"]}
    period = current_period(sub)
    for index, request in enumerate(requests):
        if request.item_id is None:
            assert request.price is not None
            added = new_item(sb, sub["id"], request.price, _quantity(request), period, request.metadata)
            items[added["id"]] = added
            continue
        if request.item_id not in items:
            raise ResourceMissing("subscription item", request.item_id, f"items[{index}][id]")
        if request.deleted:
            del items[request.item_id]
            continue
        _change_item(items[request.item_id], request)
    if not items:
        raise InvalidRequest("A subscription must keep at least one item.", param="items")
    return list(items.values())


def _change_item(item: Obj, request: ItemRequest) -> None:
    if request.price is not None:
        item["price"], item["plan"] = copy.deepcopy(request.price), plan_of(request.price)
    if request.quantity is not None:
        item["quantity"] = request.quantity
    if request.metadata is not None:
        item["metadata"] = {**item["metadata"], **request.metadata}


def _proration_lines(sb: Sandbox, old_items: list[Obj], new_items: list[Obj], restart: bool) -> list[LineSpec]:
    """Credit the unused time of what changed and, within the same cycle, charge the rest of it for the new."""
    def billed(item: Obj | None) -> tuple[str, int] | None:
        return (item["price"]["id"], item["quantity"]) if item else None

    old = {item["id"]: item for item in old_items}
    new = {item["id"]: item for item in new_items}
    changed = [item_id for item_id in [*old, *(i for i in new if i not in old)]
               if restart or billed(old.get(item_id)) != billed(new.get(item_id))]
    lines = [proration_line(sb, old[i], credit=True) for i in changed if i in old]
    if not restart:
        lines += [proration_line(sb, new[i], credit=False) for i in changed if i in new]
    return lines


# --- dunning ---------------------------------------------------------------------------------------------------
def follow_invoice(sb: Sandbox, invoice: Obj) -> None:
    """Move a subscription to the status its latest invoice calls for, as Stripe's dunning does.

    Paid → active (from incomplete, past_due or unpaid); void or uncollectible → active (from past_due or
    unpaid); declined → past_due while retries remain, then the configured end: canceled (with
    cancellation_details.reason "payment_failed"), unpaid, or left past_due. Events: customer.subscription.updated
    for a status change, customer.subscription.deleted for the cancellation.
    """
    sub = subscription_of(sb, invoice)
    if sub is None or sub["latest_invoice"] != invoice["id"] or sub["status"] in ENDED:
        return
    status = invoice["status"]
    if status == "paid" and sub["status"] in {"incomplete", "past_due", "unpaid"}:
        _set_status(sb, sub, "active")
    elif status in {"void", "uncollectible"} and sub["status"] in {"past_due", "unpaid"}:
        _set_status(sb, sub, "active")
    elif status == "open" and invoice["attempted"] and invoice["billing_reason"] != "subscription_create":
        if invoice["next_payment_attempt"] is not None:
            _set_status(sb, sub, "past_due")
        else:
            _retries_exhausted(sb, sub)


def _retries_exhausted(sb: Sandbox, sub: Obj) -> None:
    outcome = getattr(sb.settings, "subscription_status_after_retries", DEFAULT_STATUS_AFTER_RETRIES)
    if outcome == "canceled":
        cancel_now(sb, sub, "payment_failed")
    else:
        _set_status(sb, sub, outcome)


def _set_status(sb: Sandbox, sub: Obj, status: str) -> None:
    if sub["status"] == status:
        return
    before = sb.snapshot(sub)
    sub["status"] = status
    sb.emit("customer.subscription.updated", sub, before)


# --- end -------------------------------------------------------------------------------------------------------
def cancel_now(sb: Sandbox, sub: Obj, reason: str, details: Obj | None = None) -> None:
    """End a subscription now; its schedule, if any, is canceled with it.

    Events: [subscription_schedule.canceled], customer.subscription.deleted (status canceled, ended_at set).
    """
    _cancel_schedule(sb, sub)
    sb.snapshot(sub)
    now = sb.now()
    sub.update({"status": "canceled", "ended_at": now, "canceled_at": sub["canceled_at"] or now})
    sub["cancellation_details"].update({**(details or {}), "reason": reason})
    sb.emit("customer.subscription.deleted", sub)


def _cancel_schedule(sb: Sandbox, sub: Obj) -> None:
    schedule = sb.store.find(sub["schedule"]) if sub["schedule"] else None
    if schedule is None or schedule["status"] not in {"active", "not_started"}:
        return
    sb.snapshot(schedule)
    schedule.update({"status": "canceled", "canceled_at": sb.now(), "current_phase": None})
    sb.emit("subscription_schedule.canceled", schedule)


@router.add("DELETE", "/v1/subscriptions/{subscription_id}", {"invoice_now", "prorate", "cancellation_details"})
def cancel_subscription(sb: Sandbox, params: Params, subscription_id: str) -> Obj:
    """Cancel now. `invoice_now` and `prorate` are accepted and ignored: no final invoice, no credit."""
    sub = sb.store.get("subscription", subscription_id)
    if sub["status"] in ENDED:
        raise InvalidRequest(f"The subscription {subscription_id} has already ended ({sub['status']}).")
    cancel_now(sb, sub, "cancellation_requested", _cancellation_details(params))
    return sub


# --- the clock's work ------------------------------------------------------------------------------------------
def period_end_due_at(sb: Sandbox, sub: Obj) -> int | None:
    """When a running subscription next needs the clock: its period end, or its cancel_at before that."""
    if sub["status"] not in RENEWING:
        return None
    end = current_period(sub)[1]
    return min(end, sub["cancel_at"]) if sub["cancel_at"] is not None else end


def end_period(sb: Sandbox, sub: Obj) -> None:
    """At a period end: end a subscription set to cancel, else renew it."""
    if sub["cancel_at"] is not None and sb.now() >= sub["cancel_at"]:
        cancel_now(sb, sub, sub["cancellation_details"]["reason"] or "cancellation_requested")
    else:
        renew(sb, sub)


def renew(sb: Sandbox, sub: Obj) -> None:
    """Start the next period and bill it.

    Events: [customer.discount.deleted], customer.subscription.updated (previous_attributes: the items with their
    old periods, latest_invoice[, discounts]), invoice.created, invoice.finalized, the payment's, and a
    customer.subscription.updated for a status change (past_due after a decline, active after a recovery).
    An unpaid subscription gets its invoices, but Stripe no longer tries to collect them.
    """
    before = sb.snapshot(sub)
    billed = current_period(sub)
    _drop_ended_discounts(sb, sub)
    for item in sub["items"]["data"]:
        start = item["current_period_end"]
        end = boundary_after(sub["billing_cycle_anchor"], start, item["price"]["recurring"])
        item["current_period_start"], item["current_period_end"] = start, end
    invoice = _draft_period_invoice(sb, sub, "subscription_cycle", billed)
    sub["latest_invoice"] = invoice["id"]
    sb.emit("customer.subscription.updated", sub, before)
    announce_and_finalize(sb, invoice)
    if sub["status"] != "unpaid" or invoice["amount_remaining"] == 0:
        collect(sb, invoice)
    follow_invoice(sb, invoice)


def expiry_due_at(sb: Sandbox, sub: Obj) -> int | None:
    """When an incomplete subscription expires."""
    return sub["created"] + INCOMPLETE_LIFETIME if sub["status"] == "incomplete" else None


def expire_incomplete(sb: Sandbox, sub: Obj) -> None:
    """End a subscription whose first invoice stayed unpaid.

    Events: invoice.voided, customer.subscription.updated (status incomplete → incomplete_expired).
    """
    invoice = sb.store.get("invoice", sub["latest_invoice"])
    if invoice["status"] in PAYABLE:
        void(sb, invoice)
    before = sb.snapshot(sub)
    now = sb.now()
    sub.update({"status": "incomplete_expired", "ended_at": now, "canceled_at": now})
    sb.emit("customer.subscription.updated", sub, before)


# --- reading ---------------------------------------------------------------------------------------------------
@router.add("GET", "/v1/subscriptions/{subscription_id}")
def retrieve_subscription(sb: Sandbox, params: Params, subscription_id: str) -> Obj:
    return sb.store.get("subscription", subscription_id)


@router.add("GET", "/v1/subscriptions", {"limit", "starting_after", "ending_before", "customer", "status", "price"})
def list_subscriptions(sb: Sandbox, params: Params) -> Obj:
    """List subscriptions; by default those not ended, `status=all` for every one, `status=ended` for the ended."""
    customer, price, status = params.text("customer"), params.text("price"), params.text("status")
    if status is not None and status not in STATUSES | {"all", "ended"}:
        raise parameter_invalid("status", f"Invalid status: {status}")
    wanted = {"all": STATUSES, "ended": ENDED, None: STATUSES - ENDED}.get(status, {status})
    subs = [sub for sub in sb.store.all("subscription")
            if sub["status"] in wanted and (customer is None or sub["customer"] == customer)
            and (price is None or any(item["price"]["id"] == price for item in sub["items"]["data"]))]
    return paginate(subs, params, "/v1/subscriptions")


@router.add("GET", "/v1/subscription_items", {"limit", "starting_after", "ending_before", "subscription"})
def list_subscription_items(sb: Sandbox, params: Params) -> Obj:
    sub = sb.store.get("subscription", params.text("subscription", required=True) or "", param="subscription")
    return paginate(sub["items"]["data"][::-1], params, sub["items"]["url"])
