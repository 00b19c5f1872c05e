"""The billing engine: subscriptions, schedules, invoices, payments, refunds, credit notes and the clock.

(Being built: for now the clock only moves, and deleting a customer ends nothing.)
"""
from __future__ import annotations

from typing import Any

from backoffice.stripe_sandbox.sandbox import Sandbox


def advance_to(sb: Sandbox, target: int) -> None:
    """Move the clock to `target`, running every renewal, retry and phase change that falls due on the way."""
    sb.clock.move_to(target)


def end_subscriptions_of_deleted_customer(sb: Sandbox, customer: dict[str, Any]) -> None:
    """Cancel the customer's subscriptions, as Stripe does when a customer is deleted."""
    return None
