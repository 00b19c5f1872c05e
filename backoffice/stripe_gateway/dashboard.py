"""Links into Stripe's dashboard for the objects Backoffice shows."""
from __future__ import annotations

DASHBOARD = "https://dashboard.stripe.com"


def customer_url(secret_key: str | None, customer_id: str) -> str:
    """The customer's page in Stripe's dashboard; test-mode keys see it under `/test`."""
    test_mode = bool(secret_key) and secret_key.split("_", 2)[1:2] == ["test"]
    return f"{DASHBOARD}{'/test' if test_mode else ''}/customers/{customer_id}"
