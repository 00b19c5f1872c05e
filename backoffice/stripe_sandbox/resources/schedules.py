"""Subscription schedules: a subscription's phases over time, typically a downgrade at the period end.

A schedule is made from a running subscription (`from_subscription`: one phase, the current items until the
period end), then given its phases. The clock starts each phase at its start date; after the last one the
schedule releases the subscription (`end_behavior: release`, it keeps running) or cancels it (`cancel`).
"""
from __future__ import annotations

from typing import Any

from backoffice.stripe_sandbox.api import Router, paginate
from backoffice.stripe_sandbox.errors import InvalidRequest, parameter_invalid, parameter_missing
from backoffice.stripe_sandbox.params import Params, to_int
from backoffice.stripe_sandbox.resources.common import apply_metadata
from backoffice.stripe_sandbox.resources.subscriptions import (
    ENDED,
    PRORATION_BEHAVIORS,
    ItemRequest,
    add_intervals,
    cancel_now,
    choice,
    current_period,
    recurring_price,
    update_items,
)
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()

Obj = dict[str, Any]
RUNNING = {"not_started", "active"}
END_BEHAVIORS = {"release", "cancel"}
PHASE_FIELDS = {"items", "start_date", "end_date", "iterations", "duration", "proration_behavior", "metadata"}
PHASE_ITEM_FIELDS = {"price", "quantity", "metadata"}


# --- objects ---------------------------------------------------------------------------------------------------
def _phase(start: int, end: int, items: list[tuple[Obj, int]], currency: str, proration: str,
           metadata: dict[str, str] | None = None) -> Obj:
    return {
        "add_invoice_items": [], "application_fee_percent": None, "billing_cycle_anchor": None,
        "billing_thresholds": None, "collection_method": None, "currency": currency, "default_payment_method": None,
        "default_tax_rates": [], "description": None, "discounts": [], "end_date": end, "invoice_settings": None,
        "items": [{"billing_thresholds": None, "discounts": [], "metadata": {}, "plan": price["id"],
                   "price": price["id"], "quantity": quantity, "tax_rates": []} for price, quantity in items],
        "metadata": metadata or {}, "on_behalf_of": None, "proration_behavior": proration, "start_date": start,
        "transfer_data": None, "trial_end": None,
    }


def _new_schedule(sb: Sandbox, sub: Obj) -> Obj:
    start, end = current_period(sub)
    items = [(item["price"], item["quantity"]) for item in sub["items"]["data"]]
    return {
        "id": sb.new_id("sub_sched"),
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "canceled_at": None,
        "completed_at": None,
        "created": sb.now(),
        "current_phase": {"end_date": end, "start_date": start},
        "customer": sub["customer"],
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": "automatic", "billing_thresholds": None,
            "collection_method": "charge_automatically", "default_payment_method": sub["default_payment_method"],
            "description": None,
            "invoice_settings": {"account_tax_ids": None, "custom_fields": None, "days_until_due": None,
                                 "description": None, "footer": None, "issuer": {"type": "self"}},
            "on_behalf_of": None, "transfer_data": None,
        },
        "end_behavior": "release",
        "livemode": False,
        "metadata": {},
        "phases": [_phase(start, end, items, sub["currency"], "create_prorations")],
        "released_at": None,
        "released_subscription": None,
        "status": "active",
        "subscription": sub["id"],
        "test_clock": None,
    }


# --- create, update --------------------------------------------------------------------------------------------
@router.add("POST", "/v1/subscription_schedules", {"from_subscription", "customer", "start_date", "phases",
                                                   "end_behavior", "metadata"})
def create_schedule(sb: Sandbox, params: Params) -> Obj:
    """Put a running subscription under a schedule whose one phase is the current period.

    Events: subscription_schedule.created, customer.subscription.updated (previous_attributes: schedule null).
    """
    subscription_id = params.text("from_subscription")
    if not subscription_id:
        raise parameter_missing("from_subscription")  # the sandbox schedules existing subscriptions only
    for name in ("customer", "start_date", "phases", "end_behavior"):
        if name in params:
            raise parameter_invalid(name, f"You cannot set `{name}` if `from_subscription` is set.")
    sub = sb.store.get("subscription", subscription_id, param="from_subscription")
    if sub["schedule"]:
        raise InvalidRequest(f"You cannot migrate a subscription that is already attached to a schedule: "
                             f"`{sub['schedule']}`.", param="from_subscription")
    if sub["status"] in ENDED or sub["status"] == "incomplete":
        raise InvalidRequest(f"A subscription in status `{sub['status']}` cannot be put under a schedule.",
                             param="from_subscription")
    schedule = sb.store.add(_new_schedule(sb, sub))
    apply_metadata(schedule, params)
    sb.emit("subscription_schedule.created", schedule)
    before = sb.snapshot(sub)
    sub["schedule"] = schedule["id"]
    sb.emit("customer.subscription.updated", sub, before)
    return schedule


@router.add("POST", "/v1/subscription_schedules/{schedule_id}", {"phases", "end_behavior", "metadata",
                                                                 "proration_behavior"})
def update_schedule(sb: Sandbox, params: Params, schedule_id: str) -> Obj:
    """Replace the phases (the current one keeps its start), the end behaviour, the metadata.

    Events: subscription_schedule.updated; when the current phase's items changed, the subscription's change
    follows at once (customer.subscription.updated and its proration invoice, per `proration_behavior`).
    """
    schedule = _running(sb, schedule_id)
    sub = sb.store.get("subscription", schedule["subscription"])
    proration = choice(params, "proration_behavior", PRORATION_BEHAVIORS, "create_prorations")
    before = sb.snapshot(schedule)
    if "end_behavior" in params:
        schedule["end_behavior"] = choice(params, "end_behavior", END_BEHAVIORS, "release")
    apply_metadata(schedule, params)
    if "phases" in params:
        schedule["phases"] = _read_phases(sb, params, schedule, sub)
        first = schedule["phases"][0]
        schedule["current_phase"] = {"end_date": first["end_date"], "start_date": first["start_date"]}
    if schedule == before:
        return schedule
    sb.emit("subscription_schedule.updated", schedule, before)
    changes = _item_changes(sb, sub, schedule["phases"][0])
    if changes:
        update_items(sb, sub, changes, proration)
    return schedule


def _running(sb: Sandbox, schedule_id: str) -> Obj:
    schedule = sb.store.get("subscription_schedule", schedule_id)
    if schedule["status"] not in RUNNING:
        raise InvalidRequest(f"You cannot update a subscription schedule that is currently in the "
                             f"`{schedule['status']}` status.")
    return schedule


def _read_phases(sb: Sandbox, params: Params, schedule: Obj, sub: Obj) -> list[Obj]:
    """Read `phases[]`: contiguous, the first starting where the current phase started, each with an end."""
    entries = params.array("phases")
    if not entries:
        raise parameter_missing("phases")
    start = schedule["current_phase"]["start_date"]
    phases = []
    for index, entry in enumerate(entries):
        param = f"phases[{index}]"
        if not isinstance(entry, dict):
            raise parameter_invalid(param, f"Invalid object: {param} must be a hash")
        unknown = sorted(set(entry) - PHASE_FIELDS)
        if unknown:
            raise parameter_invalid(f"{param}[{unknown[0]}]", f"Received unknown parameter: {param}[{unknown[0]}]",
                                    code="parameter_unknown")
        _check_start(entry, param, start, first=index == 0)
        items = _read_phase_items(sb, entry, param)
        end = _phase_end(entry, param, start, items[0][0]["recurring"], last=index == len(entries) - 1)
        if end <= max(start, sb.now()):
            raise parameter_invalid(f"{param}[end_date]", f"The end date of {param} must be after its start date "
                                                          "and in the future.")
        proration = entry.get("proration_behavior") or "create_prorations"
        if proration not in PRORATION_BEHAVIORS:
            raise parameter_invalid(f"{param}[proration_behavior]", f"Invalid proration_behavior: {proration}")
        phases.append(_phase(start, end, items, sub["currency"], proration, entry.get("metadata") or None))
        start = end
    return phases


def _check_start(entry: Obj, param: str, expected: int, *, first: bool) -> None:
    if "start_date" not in entry or to_int(entry["start_date"], f"{param}[start_date]") == expected:
        return
    if first:
        raise parameter_invalid(f"{param}[start_date]", "You can not modify the start date of the current phase.")
    raise parameter_invalid(f"{param}[start_date]", f"The start date of {param} must be the end date of the "
                                                    "phase before it: phases are contiguous.")


def _read_phase_items(sb: Sandbox, entry: Obj, param: str) -> list[tuple[Obj, int]]:
    items = entry.get("items")
    if not isinstance(items, list) or not items:
        raise parameter_missing(f"{param}[items]")
    read = []
    for index, item in enumerate(items):
        item_param = f"{param}[items][{index}]"
        if not isinstance(item, dict) or not item.get("price") or set(item) - PHASE_ITEM_FIELDS:
            raise parameter_invalid(item_param, f"{item_param} needs a `price` (and may have `quantity`).")
        quantity = to_int(item.get("quantity", "1"), f"{item_param}[quantity]", minimum=0)
        read.append((recurring_price(sb, item["price"], f"{item_param}[price]"), quantity))
    return read


def _phase_end(entry: Obj, param: str, start: int, recurring: Obj, *, last: bool) -> int:
    """Return a phase's end: its end_date, or `iterations` or a `duration` from its start (one iteration last)."""
    if "end_date" in entry:
        return to_int(entry["end_date"], f"{param}[end_date]")
    if "iterations" in entry:
        return add_intervals(start, recurring, to_int(entry["iterations"], f"{param}[iterations]", minimum=1))
    if isinstance(entry.get("duration"), dict):
        duration = entry["duration"]
        interval = {"interval": duration.get("interval"),
                    "interval_count": to_int(duration.get("interval_count", "1"), f"{param}[duration][interval_count]",
                                             minimum=1)}
        if interval["interval"] not in {"day", "week", "month", "year"}:
            raise parameter_invalid(f"{param}[duration][interval]", "Invalid interval")
        return add_intervals(start, interval, 1)
    if last:
        return add_intervals(start, recurring, 1)
    raise parameter_missing(f"{param}[end_date]")


def _item_changes(sb: Sandbox, sub: Obj, phase: Obj) -> list[ItemRequest]:
    """Return the item requests that make the subscription's items the phase's (paired by position)."""
    items = sub["items"]["data"]
    wanted = phase["items"]
    changes = [ItemRequest(item["id"], deleted=True) for item in items[len(wanted):]]
    for index, target in enumerate(wanted):
        price = sb.store.get("price", target["price"])
        if index >= len(items):
            changes.append(ItemRequest(None, price, target["quantity"]))
        elif (items[index]["price"]["id"], items[index]["quantity"]) != (target["price"], target["quantity"]):
            changes.append(ItemRequest(items[index]["id"], price, target["quantity"]))
    return changes


# --- the clock's work ------------------------------------------------------------------------------------------
def phase_due_at(sb: Sandbox, schedule: Obj) -> int | None:
    """When a running schedule's current phase ends."""
    if schedule["status"] != "active" or schedule["current_phase"] is None:
        return None
    return schedule["current_phase"]["end_date"]


def advance_phase(sb: Sandbox, schedule: Obj) -> None:
    """At a phase's end, start the next phase or end the schedule.

    Events for a next phase: subscription_schedule.updated (current_phase), then the subscription's change
    (customer.subscription.updated; no proration at a period boundary, where the renewal bills the new price).
    After the last phase: subscription_schedule.released and customer.subscription.updated (schedule), or with
    `end_behavior: cancel`, customer.subscription.deleted and subscription_schedule.completed.
    """
    sub = sb.store.get("subscription", schedule["subscription"])
    upcoming = [phase for phase in schedule["phases"] if phase["start_date"] >= schedule["current_phase"]["end_date"]]
    if not upcoming:
        _end(sb, schedule, sub)
        return
    phase = upcoming[0]
    before = sb.snapshot(schedule)
    schedule["current_phase"] = {"end_date": phase["end_date"], "start_date": phase["start_date"]}
    sb.emit("subscription_schedule.updated", schedule, before)
    at_boundary = sb.now() == current_period(sub)[1]
    changes = _item_changes(sb, sub, phase)
    if changes:
        update_items(sb, sub, changes, "none" if at_boundary else phase["proration_behavior"])


def _end(sb: Sandbox, schedule: Obj, sub: Obj) -> None:
    if schedule["end_behavior"] == "release":
        release(sb, schedule)
        return
    sb.snapshot(schedule)
    schedule.update({"status": "completed", "completed_at": sb.now(), "current_phase": None})
    cancel_now(sb, sub, "cancellation_requested")
    sb.emit("subscription_schedule.completed", schedule)


def release(sb: Sandbox, schedule: Obj) -> None:
    """Detach the schedule from its subscription, which keeps running as it is.

    Events: subscription_schedule.released, customer.subscription.updated (previous_attributes: schedule).
    """
    sub = sb.store.get("subscription", schedule["subscription"])
    sb.snapshot(schedule)
    schedule.update({"status": "released", "released_at": sb.now(), "released_subscription": sub["id"],
                     "subscription": None, "current_phase": None})
    sb.emit("subscription_schedule.released", schedule)
    before = sb.snapshot(sub)
    sub["schedule"] = None
    sb.emit("customer.subscription.updated", sub, before)


# --- routes ----------------------------------------------------------------------------------------------------
@router.add("POST", "/v1/subscription_schedules/{schedule_id}/release", {"preserve_cancel_date"})
def release_schedule(sb: Sandbox, params: Params, schedule_id: str) -> Obj:
    schedule = _running(sb, schedule_id)
    release(sb, schedule)
    return schedule


@router.add("POST", "/v1/subscription_schedules/{schedule_id}/cancel", {"invoice_now", "prorate"})
def cancel_schedule(sb: Sandbox, params: Params, schedule_id: str) -> Obj:
    """Cancel the schedule and, as Stripe does, its subscription with it (now; no final invoice).

    Events: subscription_schedule.canceled, customer.subscription.deleted.
    """
    schedule = _running(sb, schedule_id)
    cancel_now(sb, sb.store.get("subscription", schedule["subscription"]), "cancellation_requested")
    return schedule


@router.add("GET", "/v1/subscription_schedules/{schedule_id}")
def retrieve_schedule(sb: Sandbox, params: Params, schedule_id: str) -> Obj:
    return sb.store.get("subscription_schedule", schedule_id)


@router.add("GET", "/v1/subscription_schedules", {"limit", "starting_after", "ending_before", "customer"})
def list_schedules(sb: Sandbox, params: Params) -> Obj:
    customer = params.text("customer")
    schedules = [s for s in sb.store.all("subscription_schedule") if customer is None or s["customer"] == customer]
    return paginate(schedules, params, "/v1/subscription_schedules")
