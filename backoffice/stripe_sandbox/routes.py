"""Every route the sandbox serves."""
from __future__ import annotations

import importlib

from backoffice.stripe_sandbox.api import Router

RESOURCE_MODULES = (
    "customers",
    "catalog",
    "payment_methods",
    "events",
    "clock",
    "subscriptions",
    "schedules",
    "invoices",
    "refunds",
    "credit_notes",
    "webhook_endpoints",
    "sandbox_admin",
)


def build_router() -> Router:
    """Collect the routers of the resource modules."""
    router = Router()
    for name in RESOURCE_MODULES:
        router.extend(importlib.import_module(f"backoffice.stripe_sandbox.resources.{name}").router)
    return router
