"""Webhook endpoints: where events are delivered, which ones, and in which API version.

Only the create response carries the signing `secret`, as at Stripe. Stripe emits no events for
endpoint changes, and neither does the sandbox.
"""
from __future__ import annotations

import re
from typing import Any

from backoffice.stripe_sandbox import versions
from backoffice.stripe_sandbox.api import Router, paginate
from backoffice.stripe_sandbox.errors import InvalidRequest, parameter_invalid, parameter_missing
from backoffice.stripe_sandbox.loopback import NotLoopback, check_url
from backoffice.stripe_sandbox.params import Params
from backoffice.stripe_sandbox.resources.common import apply_metadata, deleted
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()

EVENT_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
CREATE_PARAMS = {"url", "enabled_events", "api_version", "description", "metadata"}
UPDATE_PARAMS = {"url", "enabled_events", "api_version", "description", "metadata", "disabled"}


def read_url(params: Params) -> str:
    """Return the `url` parameter if the sandbox may deliver to it (loopback only)."""
    url = params.text("url", required=True) or ""
    try:
        check_url(url)
    except NotLoopback as error:
        raise InvalidRequest(f"Invalid URL: {error}. The sandbox delivers webhooks only to http:// URLs on this "
                             "machine's loopback (127.0.0.1, ::1, localhost).", code="url_invalid",
                             param="url") from None
    return url


def read_enabled_events(params: Params) -> list[str]:
    """Return `enabled_events`: event type names, or `*` for all of them."""
    names = params.array("enabled_events")
    if not names:
        raise parameter_missing("enabled_events")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not (name == "*" or EVENT_TYPE.match(name)):
            raise parameter_invalid(f"enabled_events[{index}]",
                                    f"Invalid enabled_events[{index}]: {name!r} is not an event type or '*'.")
    return list(dict.fromkeys(names))


def read_api_version(params: Params) -> str | None:
    """Return the endpoint's pinned API version (None: the account's), refusing ones Stripe does not know."""
    version = params.text("api_version")
    if version is None or version == "":
        return None
    if not versions.is_known(version):
        raise parameter_invalid("api_version", f"Invalid Stripe API version: {version}. The sandbox renders "
                                f"events in versions {versions.KNOWN_VERSIONS[0]} to {versions.KNOWN_VERSIONS[-1]}.")
    return version


def live_endpoints(sb: Sandbox) -> list[dict[str, Any]]:
    return [e for e in sb.store.all("webhook_endpoint") if e["object"] == "webhook_endpoint"]


@router.add("POST", "/v1/webhook_endpoints", CREATE_PARAMS)
def create_webhook_endpoint(sb: Sandbox, params: Params) -> dict[str, Any]:
    endpoint = {
        "id": sb.new_id("we"),
        "object": "webhook_endpoint",
        "api_version": read_api_version(params),
        "application": None,
        "created": sb.now(),
        "description": params.text("description"),
        "enabled_events": read_enabled_events(params),
        "livemode": False,
        "metadata": {},
        "status": "enabled",
        "url": read_url(params),
    }
    apply_metadata(endpoint, params)
    sb.store.add(endpoint)
    secret = sb.webhooks.register(endpoint["id"])
    return {**endpoint, "secret": secret}


@router.add("GET", "/v1/webhook_endpoints/{endpoint_id}")
def retrieve_webhook_endpoint(sb: Sandbox, params: Params, endpoint_id: str) -> dict[str, Any]:
    return sb.store.get("webhook_endpoint", endpoint_id)


@router.add("POST", "/v1/webhook_endpoints/{endpoint_id}", UPDATE_PARAMS)
def update_webhook_endpoint(sb: Sandbox, params: Params, endpoint_id: str) -> dict[str, Any]:
    endpoint = sb.store.get("webhook_endpoint", endpoint_id)
    changes: dict[str, Any] = {}
    if "url" in params:
        changes["url"] = read_url(params)
    if "enabled_events" in params:
        changes["enabled_events"] = read_enabled_events(params)
    if "api_version" in params:
        changes["api_version"] = read_api_version(params)
    if "description" in params:
        changes["description"] = params.text("description") or None
    if "disabled" in params:
        changes["status"] = "disabled" if params.boolean("disabled") else "enabled"
    sb.snapshot(endpoint)
    endpoint.update(changes)
    apply_metadata(endpoint, params)
    return endpoint


@router.add("GET", "/v1/webhook_endpoints", {"limit", "starting_after", "ending_before"})
def list_webhook_endpoints(sb: Sandbox, params: Params) -> dict[str, Any]:
    return paginate(live_endpoints(sb), params, "/v1/webhook_endpoints")


@router.add("DELETE", "/v1/webhook_endpoints/{endpoint_id}")
def delete_webhook_endpoint(sb: Sandbox, params: Params, endpoint_id: str) -> dict[str, Any]:
    endpoint = sb.store.get("webhook_endpoint", endpoint_id)
    sb.snapshot(endpoint)
    # The stored object becomes Stripe's deleted stub: no longer retrievable, listed or delivered to.
    endpoint.clear()
    endpoint.update({"id": endpoint_id, "object": "deleted_webhook_endpoint", "deleted": True})
    return deleted({"id": endpoint_id, "object": "webhook_endpoint"})
