"""GET /v1/events and /v1/events/<id>, rendered in the account's API version."""
from __future__ import annotations

from typing import Any

from backoffice.stripe_sandbox.api import Router
from backoffice.stripe_sandbox.params import Params
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()


@router.add("GET", "/v1/events", {"limit", "starting_after", "ending_before", "type", "types", "created",
                                  "delivery_success"})
def list_events(sb: Sandbox, params: Params) -> dict[str, Any]:
    return sb.events.list(params, sb.now(), sb.render_event)


@router.add("GET", "/v1/events/{event_id}")
def retrieve_event(sb: Sandbox, params: Params, event_id: str) -> dict[str, Any]:
    return sb.render_event(sb.events.get(event_id, sb.now()))
