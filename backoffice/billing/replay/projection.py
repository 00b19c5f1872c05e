"""The subscription projection (DESIGN §3): the subscription row brought to the customer's latest state.

Plan, prices and forward MRR come priced from `pricing`; payment method, billing info and payment trouble are
plain functions over the as-of objects (the latest `data.object` of each id) and the ordered events; the
tenant's plan and state follow.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from backoffice.accounts.models import Tenant
from backoffice.billing.ledger.ordering import ArchivedEvent
from backoffice.billing.ledger.pricing import SubscriptionAmounts
from backoffice.billing.ledger.resolvers import ref_id
from backoffice.billing.ledger.rules import BASELINE, Replayed
from backoffice.billing.ledger.vocabulary import AccountStatus, EventType
from backoffice.billing.models import Subscription

Obj = dict[str, Any]
TROUBLED = frozenset({"past_due", "unpaid", "incomplete"})
ADDRESS_FIELDS = ("line1", "line2", "postal_code", "city", "state", "country")


def payment_method(customer: Obj | None, objects: dict[str, Obj]) -> dict[str, Any] | None:
    """The customer's default card as the seed shows it (Link: brand link, last4 ****, expiry 0/0)."""
    if not customer:
        return None
    default = ref_id((customer.get("invoice_settings") or {}).get("default_payment_method"))
    method = objects.get(default) if default else None
    if method is None:
        attached = [o for o in objects.values() if o.get("object") == "payment_method"
                    and ref_id(o.get("customer")) == customer.get("id")]
        method = max(attached, key=lambda o: o.get("created") or 0) if attached else None
    if method is None:
        return None
    if method.get("type") == "link":
        return {"brand": "link", "last4": "****", "exp_month": 0, "exp_year": 0}
    card = method.get("card") or {}
    return {"brand": card.get("brand"), "last4": card.get("last4"), "exp_month": card.get("exp_month"),
            "exp_year": card.get("exp_year")}


def billing_info(customer: Obj | None, objects: dict[str, Obj]) -> dict[str, Any] | None:
    """Name, address, email and VAT id of the customer."""
    if not customer:
        return None
    address = customer.get("address") or {}
    tax_ids = [o for o in objects.values() if o.get("object") == "tax_id" and ref_id(o.get("customer")) == customer.get("id")]
    listed = [t for t in (customer.get("tax_ids") or {}).get("data", []) if isinstance(t, dict)] \
        if isinstance(customer.get("tax_ids"), dict) else []
    latest = max(tax_ids or listed, key=lambda t: t.get("created") or 0) if (tax_ids or listed) else None
    return {"name": customer.get("name"), "email": customer.get("email"),
            "address": {name: address.get(name) for name in ADDRESS_FIELDS} if address else None,
            "tax_id": (latest or {}).get("value")}


def first_payment_failed_at(events: Iterable[ArchivedEvent]) -> datetime | None:
    """When the current run of payment trouble began (set on past_due/unpaid/incomplete, cleared when active)."""
    since = None
    for event in events:
        obj = event.object
        if obj.get("object") != "subscription":
            continue
        status = obj.get("status")
        if status in TROUBLED and since is None:
            since = datetime.fromtimestamp(event.created, UTC)
        elif status == "active":
            since = None
    return since


def cancellation_reason(subscription: Obj | None) -> str | None:
    """Why a canceling or canceled subscription ends: the customer's feedback, else Stripe's reason."""
    if not subscription or not (subscription.get("cancel_at_period_end") or subscription.get("status") == "canceled"):
        return None
    details = subscription.get("cancellation_details") or {}
    return details.get("feedback") or details.get("reason") or None


def project(session: Session, subscription: Subscription, replayed: Replayed, amounts: SubscriptionAmounts | None,
            ever_paid: bool, free: str) -> None:
    """Bring the subscription row to the customer's latest state (the fields the ledger knows)."""
    state = replayed.state
    if state is None or state.resolver is None:
        return
    resolver = state.resolver
    stripe_subscription = state.subscription
    now = datetime.now(UTC)
    subscription.modified_at = now
    if stripe_subscription and amounts is not None:
        subscription.stripe_subscription_id = stripe_subscription.get("id")
        subscription.status = stripe_subscription.get("status")
        subscription.plan = amounts.plan
        subscription.current_price_amount = amounts.current
        subscription.current_price_currency = resolver.subscription_currency(stripe_subscription)
        subscription.scheduled_plan = amounts.scheduled_plan
        subscription.scheduled_price_amount = amounts.scheduled
        period_end = resolver.period_end(stripe_subscription)
        subscription.current_period_end = datetime.fromtimestamp(period_end, UTC) if period_end else None
        subscription.cancel_at_period_end = bool(stripe_subscription.get("cancel_at_period_end"))
        subscription.forward_mrr = amounts.forward
    customer = state.objects.get(state.customer_id) if state.customer_id else None
    if customer is not None:
        subscription.payment_method = payment_method(customer, state.objects)
        subscription.billing_info = billing_info(customer, state.objects)
    subscription.first_payment_failed_at = first_payment_failed_at(replayed.ordered)
    subscription.cancellation_reason = cancellation_reason(stripe_subscription)
    # A baseline with MRR stands for a creation the archive lacks (DESIGN §4.11).
    created = [row.occurred_at for row in replayed.rows if row.event_type == EventType.CREATED
               or (row.event_type == BASELINE and row.committed_mrr > 0)]
    if created:
        earliest = min(created)
        # Moves only backward (the seed's rule): a late, older Created can only make it earlier.
        if subscription.subscribed_since is None or earliest < subscription.subscribed_since:
            subscription.subscribed_since = earliest
    subscription.account_status = str(account_status(subscription, ever_paid, free))
    tenant = session.get(Tenant, subscription.tenant_id)
    if tenant is not None:
        tenant.plan = subscription.plan or free
        last = next((row for row in reversed(replayed.rows) if row.event_type != EventType.NO_OP), None)
        if last is not None and last.event_type == EventType.SUSPENDED:
            tenant.state, tenant.suspension_reason = "suspended", last.suspension_reason
        elif subscription.plan:
            tenant.state, tenant.suspension_reason = "active", None


def account_status(subscription: Subscription, ever_paid: bool, free: str) -> AccountStatus:
    """Reference §6's derivation, in its priority order; `free` is the free plan (DESIGN §4.1)."""
    if subscription.cancel_at_period_end and subscription.plan:
        return AccountStatus.CANCELING
    if subscription.scheduled_plan:
        return AccountStatus.DOWNGRADING
    if subscription.plan and subscription.plan != free:
        return AccountStatus.ACTIVE
    return AccountStatus.CANCELED if ever_paid else AccountStatus.FREE
