"""Which Stripe failures are worth another try, how long to wait first, and what the others become.

The SDK's own retries are off (`max_network_retries=0`), so this is the only retry policy: every attempt
goes through the token bucket, and a 429 never turns into a burst of immediate retries.
"""
from __future__ import annotations

import random
from collections.abc import Mapping

import stripe

from backoffice.stripe_gateway.errors import StripeNotFound, StripeRequestFailed

MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 60.0


def is_retryable(error: stripe.StripeError) -> bool:
    """Say whether the same request may succeed later: rate limits, Stripe's 5xx and network failures."""
    should_retry = _header(error.headers, "Stripe-Should-Retry")
    if should_retry == "false":
        return False
    if should_retry == "true":  # e.g. a 409 lock_timeout: Stripe says another try will do
        return True
    if isinstance(error, stripe.RateLimitError | stripe.APIConnectionError):
        return True
    return isinstance(error, stripe.APIError) and (error.http_status or 0) >= 500


def retry_delay(attempt: int, backoff_seconds: float, error: stripe.StripeError) -> float:
    """Return the pause before retry number `attempt` (0 first): exponential with jitter, at least Retry-After.

    Half the exponential step is fixed and half random, so waiting callers spread out but never retry early.
    """
    step = min(MAX_BACKOFF_SECONDS, backoff_seconds * 2 ** attempt)
    delay = step / 2 + random.uniform(0, step / 2)
    retry_after = _retry_after(error.headers)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def failure(error: stripe.StripeError) -> StripeRequestFailed:
    """Translate a refused request into the gateway's error, keeping Stripe's message."""
    message = error.user_message or str(error) or type(error).__name__
    kind = StripeNotFound if error.http_status == 404 and error.code == "resource_missing" else StripeRequestFailed
    return kind(message, http_status=error.http_status, code=error.code, param=getattr(error, "param", None),
                request_id=error.request_id)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = _header(headers, "Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from Stripe, and the backoff still applies
    return seconds if seconds is not None and seconds >= 0 else None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value.strip().lower()
    return None
