"""The only code in Backoffice that calls Stripe: a shared rate budget, retries, typed results and errors.

Plain Python (no Flask): jobs, CLI commands and views build a gateway with `gateway_from_config(app.config)`
or any mapping of settings.
"""
from backoffice.stripe_gateway.client import StripeGateway
from backoffice.stripe_gateway.errors import (
    RateLimitTimeout,
    StripeGatewayError,
    StripeNotConfigured,
    StripeNotFound,
    StripeRequestFailed,
    StripeUnavailable,
)
from backoffice.stripe_gateway.factory import default_rate_limit, gateway_from_config, rate_budget
from backoffice.stripe_gateway.rate_limit import InProcessTokenBucket, RedisTokenBucket, TokenBucket
from backoffice.stripe_gateway.results import CustomerInfo, EventsPage, PriceInfo

__all__ = [
    "CustomerInfo",
    "EventsPage",
    "InProcessTokenBucket",
    "PriceInfo",
    "RateLimitTimeout",
    "RedisTokenBucket",
    "StripeGateway",
    "StripeGatewayError",
    "StripeNotConfigured",
    "StripeNotFound",
    "StripeRequestFailed",
    "StripeUnavailable",
    "TokenBucket",
    "default_rate_limit",
    "rate_budget",
    "gateway_from_config",
]
