"""The sandbox's own control routes: webhook delivery knobs and resends, rate limits, request counts.

They sit under /v1/test_helpers/ beside Stripe's test helpers and take the secret key like every route.
They are never rate limited (see CONTROL_ROUTES), so a test can always lift a limit it set. Resending one
event also answers at Stripe's own path, `POST /v1/events/{id}/retry`, which `stripe events resend` calls.
"""
from __future__ import annotations

import math
from typing import Any

from backoffice.stripe_sandbox.api import Router
from backoffice.stripe_sandbox.errors import InvalidRequest, parameter_invalid
from backoffice.stripe_sandbox.events import RETENTION_SECONDS
from backoffice.stripe_sandbox.params import Params, to_bool, to_int
from backoffice.stripe_sandbox.sandbox import Sandbox
from backoffice.stripe_sandbox.webhooks import DeliveryKnobs, listens

router = Router()

ENDPOINT_HELPERS = "/v1/test_helpers/webhook_endpoints/{endpoint_id}"
KNOB_PARAMS = {"drop_rate", "duplicate_rate", "delay_seconds", "shuffle", "seed", "drop_customers", "shuffle_rate"}


# --- webhook delivery knobs ----------------------------------------------------------------------------


def knobs_object(endpoint_id: str, knobs: DeliveryKnobs) -> dict[str, Any]:
    return {"object": "webhook_delivery_knobs", "webhook_endpoint": endpoint_id, **knobs.to_dict()}


def read_number(params: Params, name: str, *, maximum: float = math.inf) -> float:
    """Return a decimal parameter between 0 and `maximum`."""
    raw = params.text(name) or ""
    try:
        value = float(raw)
    except ValueError:
        raise parameter_invalid(name, f"Invalid decimal: {raw}") from None
    if not 0 <= value <= maximum:
        raise parameter_invalid(name, f"{name} must be between 0 and {maximum:g}.")
    return value


def read_shuffle(params: Params) -> bool | int:
    """Return `shuffle`: true, false, or a window of at least 2 deliveries."""
    raw = params.text("shuffle") or ""
    if raw in {"true", "false"}:
        return to_bool(raw, "shuffle")
    window = to_int(raw, "shuffle", minimum=0)
    if window == 1:
        raise parameter_invalid("shuffle", "A shuffle window must hold at least 2 deliveries (or pass false).")
    return window


@router.add("GET", f"{ENDPOINT_HELPERS}/delivery_knobs")
def retrieve_delivery_knobs(sb: Sandbox, params: Params, endpoint_id: str) -> dict[str, Any]:
    sb.store.get("webhook_endpoint", endpoint_id)
    return knobs_object(endpoint_id, sb.webhooks.knobs(endpoint_id))


@router.add("POST", f"{ENDPOINT_HELPERS}/delivery_knobs", KNOB_PARAMS)
def update_delivery_knobs(sb: Sandbox, params: Params, endpoint_id: str) -> dict[str, Any]:
    """Change some of an endpoint's knobs; passing `seed` (even unchanged) restarts its random streams."""
    sb.store.get("webhook_endpoint", endpoint_id)
    values = sb.webhooks.knobs(endpoint_id).to_dict()
    for name in ("drop_rate", "duplicate_rate", "shuffle_rate"):
        if name in params:
            values[name] = read_number(params, name, maximum=1)
    if "delay_seconds" in params:
        values["delay_seconds"] = read_number(params, "delay_seconds", maximum=3600)
    if "shuffle" in params:
        values["shuffle"] = read_shuffle(params)
    if "seed" in params:
        values["seed"] = params.integer("seed")
    if "drop_customers" in params:
        values["drop_customers"] = tuple(str(customer) for customer in params.array("drop_customers"))
    knobs = DeliveryKnobs(**values)
    sb.webhooks.set_knobs(endpoint_id, knobs)
    return knobs_object(endpoint_id, knobs)


# --- resending events ----------------------------------------------------------------------------------


def enabled_endpoint(sb: Sandbox, endpoint_id: str, param: str = "id") -> dict[str, Any]:
    endpoint = sb.store.get("webhook_endpoint", endpoint_id, param=param)
    if endpoint["status"] != "enabled":
        raise InvalidRequest(f"The webhook endpoint {endpoint_id} is disabled; enable it to deliver to it.",
                             param=param)
    return endpoint


@router.add("POST", f"{ENDPOINT_HELPERS}/redeliver", {"events"})
def redeliver_events(sb: Sandbox, params: Params, endpoint_id: str) -> dict[str, Any]:
    """Send stored events to an endpoint again: those named in `events`, else every retained one it wants."""
    endpoint = enabled_endpoint(sb, endpoint_id)
    named = [str(event_id) for event_id in params.array("events")]
    if named:
        events = [sb.events.get(event_id, sb.now()) for event_id in named]
    else:
        oldest = sb.now() - RETENTION_SECONDS
        events = [e for e in sb.events.events if e["created"] >= oldest and listens(endpoint, e["type"])]
    sb.webhooks.redeliver(endpoint_id, events)
    return {"object": "webhook_redelivery", "webhook_endpoint": endpoint_id, "events": [e["id"] for e in events]}


@router.add("POST", "/v1/events/{event_id}/retry", {"webhook_endpoint"})
def retry_event(sb: Sandbox, params: Params, event_id: str) -> dict[str, Any]:
    """Resend one event to one endpoint (what `stripe events resend --webhook-endpoint` asks for)."""
    endpoint_id = params.text("webhook_endpoint", required=True) or ""
    enabled_endpoint(sb, endpoint_id, param="webhook_endpoint")
    event = sb.events.get(event_id, sb.now())
    sb.webhooks.redeliver(endpoint_id, [event])
    return sb.render_event(event)


# --- rate limits and request counts --------------------------------------------------------------------


def rate_limits_object(sb: Sandbox) -> dict[str, Any]:
    return {"object": "rate_limits", "reads": sb.settings.rate_limit_reads, "writes": sb.settings.rate_limit_writes}


@router.add("GET", "/v1/test_helpers/rate_limits")
def retrieve_rate_limits(sb: Sandbox, params: Params) -> dict[str, Any]:
    return rate_limits_object(sb)


@router.add("POST", "/v1/test_helpers/rate_limits", {"reads", "writes"})
def update_rate_limits(sb: Sandbox, params: Params) -> dict[str, Any]:
    """Set the requests allowed per second for reads and for writes; an empty value lifts the limit."""
    for kind in ("reads", "writes"):
        if kind in params:
            setattr(sb.settings, f"rate_limit_{kind}", params.integer(kind, minimum=1))
    return rate_limits_object(sb)


def request_counts_object(sb: Sandbox) -> dict[str, Any]:
    with sb.counts_lock:
        return {"object": "request_counts", "counts": dict(sorted(sb.request_counts.items()))}


@router.add("GET", "/v1/test_helpers/request_counts")
def retrieve_request_counts(sb: Sandbox, params: Params) -> dict[str, Any]:
    """Return how many requests each route has answered (`METHOD /path/{template}` → count)."""
    return request_counts_object(sb)


@router.add("POST", "/v1/test_helpers/request_counts/reset")
def reset_request_counts(sb: Sandbox, params: Params) -> dict[str, Any]:
    with sb.counts_lock:
        sb.request_counts.clear()
    return request_counts_object(sb)


CONTROL_ROUTES = frozenset(route.name for route in router.routes)
