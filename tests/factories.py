"""Rows and row values for tests: valid by default, any column overridable by keyword."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from backoffice.accounts.models import Tenant
from backoffice.billing.models import (
    BillingEvent,
    BillingEventCorrection,
    StripeEvent,
    StripeEventState,
    Subscription,
)

# When the default ledger row happened, and when its default correction was written.
OCCURRED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CORRECTED_AT = OCCURRED_AT + timedelta(minutes=5)

RowT = TypeVar("RowT")


def new_id(prefix: str) -> str:
    """Return a fresh id in Stripe's `prefix_…` shape."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _add(session: Session, row: RowT) -> RowT:
    """Add the row and flush it, so that database defaults and constraints apply at once."""
    session.add(row)
    session.flush()
    return row


def make_tenant(session: Session, **overrides: Any) -> Tenant:
    """Store and return a tenant."""
    return _add(session, Tenant(**{"id": new_id("ten"), "name": "Fjord Consulting", **overrides}))


def make_subscription(session: Session, **overrides: Any) -> Subscription:
    """Store and return a subscription, of a new tenant unless `tenant_id` is given."""
    values = {"id": new_id("subscr"), "stripe_customer_id": new_id("cus"), **overrides}
    if "tenant_id" not in values:  # not setdefault: that would make a stray tenant every time
        values["tenant_id"] = make_tenant(session).id
    return _add(session, Subscription(**values))


STATE_FIELDS = ("status", "processed_at", "error", "tenant_id")


def archive_event(session: Session, **fields: Any) -> StripeEvent:
    """Store an archived Stripe event; its state (`status`, `processed_at`, `error`, `tenant_id` among `fields`) is
    then moved from the pending the archive opens it with, as a replay would move it."""
    state = {name: fields.pop(name) for name in STATE_FIELDS if name in fields}
    event = _add(session, StripeEvent(**fields))
    if state and state != {"status": "pending"}:
        session.execute(sa.update(StripeEventState).where(StripeEventState.stripe_event_id == event.id).values(**state))
    return event


def billing_event_values(subscription: Subscription, **overrides: Any) -> dict[str, Any]:
    """Return the columns of a ledger row of the subscription: an immediate cancellation from standard."""
    return {
        "id": new_id("bilevt"),
        "tenant_id": subscription.tenant_id,
        "subscription_id": subscription.id,
        "stripe_event_id": new_id("evt"),
        "event_type": "SubscriptionImmediatelyCancelled",
        "from_plan": "standard",
        "to_plan": "basis",
        "previous_amount": Decimal("49.00"),
        "new_amount": Decimal("0.00"),
        "amount_delta": Decimal("-49.00"),
        "committed_mrr": Decimal("0.00"),
        "currency": "EUR",
        "occurred_at": OCCURRED_AT,
        "position": 1,
        "movement": "churn",
        **overrides,
    }


def make_billing_event(
    session: Session, *, subscription: Subscription | None = None, **overrides: Any
) -> BillingEvent:
    """Store and return a ledger row, of a new subscription unless one is given."""
    values = billing_event_values(subscription or make_subscription(session), **overrides)
    return _add(session, BillingEvent(**values))


def make_correction(
    session: Session, billing_event: BillingEvent, **overrides: Any
) -> BillingEventCorrection:
    """Store and return a correction of the ledger row: it expired instead, at CORRECTED_AT."""
    values = {
        "billing_event_id": billing_event.id,
        "event_type": "SubscriptionExpired",
        "from_plan": "standard",
        "to_plan": "basis",
        "previous_amount": Decimal("0.00"),
        "new_amount": Decimal("0.00"),
        "amount_delta": Decimal("0.00"),
        "committed_mrr": Decimal("0.00"),
        "movement": "other",
        "caused_by": new_id("evt"),
        "reason": "late customer.subscription.updated recomputed the row",
        "at": CORRECTED_AT,
        **overrides,
    }
    return _add(session, BillingEventCorrection(**values))


def payment_values(subscription: Subscription, **overrides: Any) -> dict[str, Any]:
    """Return the columns of a paid invoice of the subscription: 49.00 EUR plus 25% VAT."""
    return {
        "id": new_id("in"),
        "subscription_id": subscription.id,
        "tenant_id": subscription.tenant_id,
        "amount": Decimal("61.25"),
        "amount_excluding_tax": Decimal("49.00"),
        "tax_amount": Decimal("12.25"),
        "invoice_total": Decimal("61.25"),
        "currency": "EUR",
        "status": "succeeded",
        "date": OCCURRED_AT,
        **overrides,
    }
