"""The sandbox clock (like a Stripe test clock for the whole account): read it, move it forward."""
from __future__ import annotations

from typing import Any

from backoffice.stripe_sandbox.api import Router
from backoffice.stripe_sandbox.errors import InvalidRequest
from backoffice.stripe_sandbox.params import Params
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()
CLOCK_PATH = "/v1/test_helpers/sandbox_clock"


def clock_object(sb: Sandbox) -> dict[str, Any]:
    return {"object": "sandbox_clock", "frozen_time": sb.now(), "livemode": False, "status": "ready"}


@router.add("GET", CLOCK_PATH)
def retrieve_clock(sb: Sandbox, params: Params) -> dict[str, Any]:
    return clock_object(sb)


@router.add("POST", f"{CLOCK_PATH}/advance", {"frozen_time", "seconds", "days"})
def advance_clock(sb: Sandbox, params: Params) -> dict[str, Any]:
    """Move the clock to `frozen_time`, or by `seconds` or `days`, running everything that falls due."""
    given = [name for name in ("frozen_time", "seconds", "days") if name in params]
    if len(given) != 1:
        raise InvalidRequest("Pass exactly one of frozen_time, seconds or days.", param="frozen_time")
    if "frozen_time" in params:
        target = params.integer("frozen_time")
    elif "seconds" in params:
        target = sb.now() + (params.integer("seconds", minimum=0) or 0)
    else:
        target = sb.now() + (params.integer("days", minimum=0) or 0) * 86400
    assert target is not None
    if target < sb.now():
        raise InvalidRequest("The clock cannot move backward.", param="frozen_time")
    from backoffice.stripe_sandbox.billing import advance_to

    advance_to(sb, target)
    return clock_object(sb)
