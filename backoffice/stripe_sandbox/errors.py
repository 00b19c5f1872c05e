"""Stripe's error responses: `{"error": {type, code, message, param}}` with Stripe's HTTP status."""
from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error Stripe would answer with; `body()` is the JSON it sends."""

    status = 400
    type = "invalid_request_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(StripeError):
    """A malformed or impossible request (400)."""


class ResourceMissing(StripeError):
    """An id that names nothing (404)."""

    status = 404

    def __init__(self, kind: str, object_id: str, param: str = "id"):
        super().__init__(f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


class UnknownRoute(StripeError):
    """A path Stripe does not serve (404)."""

    status = 404

    def __init__(self, method: str, path: str):
        super().__init__(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at "
            "https://support.stripe.com/."
        )


class AuthenticationFailed(StripeError):
    """No key or a key the sandbox does not know (401)."""

    status = 401

    def __init__(self, message: str):
        super().__init__(message)


class CardDeclined(StripeError):
    """A payment the card refused (402)."""

    status = 402
    type = "card_error"

    def __init__(self, message: str = "Your card was declined.", *, decline_code: str = "generic_decline",
                 charge: str | None = None):
        extra: dict[str, Any] = {"decline_code": decline_code}
        if charge:
            extra["charge"] = charge
        super().__init__(message, code="card_declined", extra=extra)


class IdempotencyConflict(StripeError):
    """An idempotency key reused with other parameters (400)."""

    type = "idempotency_error"

    def __init__(self, key: str):
        super().__init__(
            f"Keys for idempotent requests can only be used with the same parameters they were first used with. "
            f"Try using a key other than '{key}' if you meant to execute a different request."
        )


class RateLimited(StripeError):
    """Too many requests in the current second (429)."""

    status = 429
    type = "invalid_request_error"

    def __init__(self) -> None:
        super().__init__(
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )


def parameter_missing(param: str) -> InvalidRequest:
    """Return Stripe's error for a required parameter left out."""
    return InvalidRequest(f"Missing required param: {param}.", code="parameter_missing", param=param)


def parameter_invalid(param: str, message: str, code: str = "parameter_invalid") -> InvalidRequest:
    """Return Stripe's error for a parameter with a bad value."""
    return InvalidRequest(message, code=code, param=param)


def parameter_unknown(param: str) -> InvalidRequest:
    """Return Stripe's error for a parameter the endpoint does not take."""
    return InvalidRequest(f"Received unknown parameter: {param}", code="parameter_unknown", param=param)
