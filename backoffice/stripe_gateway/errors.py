"""The gateway's own errors: callers handle these, never the SDK's, so the SDK stays behind one door."""
from __future__ import annotations


class StripeGatewayError(Exception):
    """Any failure of a Stripe call made through the gateway."""


class StripeNotConfigured(StripeGatewayError):
    """No Stripe secret key is set, so Stripe features are off."""


class StripeUnavailable(StripeGatewayError):
    """Stripe did not answer usefully (429, 5xx, network) within the retries, so the caller should try later."""

    def __init__(self, message: str, *, attempts: int = 0):
        super().__init__(message)
        self.attempts = attempts


class RateLimitTimeout(StripeUnavailable):
    """The shared request budget had no token within the timeout: to the caller, Stripe is busy."""

    def __init__(self, message: str, *, waited: float):
        super().__init__(message)
        self.waited = waited


class StripeRequestFailed(StripeGatewayError):
    """Stripe refused the request (a 4xx other than a rate limit); retrying the same request will not help."""

    def __init__(self, message: str, *, http_status: int | None = None, code: str | None = None,
                 param: str | None = None, request_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.param = param
        self.request_id = request_id


class StripeNotFound(StripeRequestFailed):
    """The id names nothing at Stripe (404 resource_missing)."""
