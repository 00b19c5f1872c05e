"""Links into Stripe's dashboard for the objects Backoffice shows."""
from __future__ import annotations

from urllib.parse import urlsplit

DASHBOARD = "https://dashboard.stripe.com"
STRIPE_API_HOST = "api.stripe.com"


def customer_url(secret_key: str | None, customer_id: str, api_base: str | None = None) -> str | None:
    """The customer's page in Stripe's dashboard; test-mode keys see it under `/test`. None when the API is not
    Stripe's own (the sandbox, a mock): its customers do not exist in Stripe's dashboard, so no link is better
    than a link to "not found"."""
    if api_base and urlsplit(api_base).hostname != STRIPE_API_HOST:
        return None
    test_mode = bool(secret_key) and secret_key.split("_", 2)[1:2] == ["test"]
    return f"{DASHBOARD}{'/test' if test_mode else ''}/customers/{customer_id}"
