"""One account as its side pane and its page show it: the overview, the Current plan card, drift, recovery.

Reads across the domains: the account's people (accounts.members) beside its billing (the subscription
projection, the ledger, the one net-revenue query); nothing here writes.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.accounts.members import Member, UserCounts, owners, recent_members, user_counts
from backoffice.billing.ledger.revenue import lifetime_value
from backoffice.billing.ledger.vocabulary import EventType
from backoffice.billing.models import BillingEvent, PaymentTransaction, Subscription
from backoffice.billing.reconcile.recovery import RecoveryOffer, recovery_offer
from backoffice.read.account_list import AccountRow, get_account
from backoffice.stripe_gateway.dashboard import customer_url

SUBSCRIPTIONS = Subscription.__table__


@dataclass(frozen=True)
class LastInvoice:
    date: datetime
    amount: Decimal
    currency: str


def last_invoice(session: Session, tenant_id: str) -> LastInvoice | None:
    """The newest invoice of the account: its date and the invoice total."""
    payments = PaymentTransaction.__table__
    row = session.execute(
        select(payments.c.date, payments.c.invoice_total, payments.c.currency)
        .where(payments.c.tenant_id == tenant_id).order_by(payments.c.date.desc(), payments.c.id.desc()).limit(1)
    ).first()
    return LastInvoice(*row) if row is not None else None


@dataclass(frozen=True)
class SubscriptionCard:
    """What the Current plan card shows beyond the list row."""

    status: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancellation_reason: str | None
    payment_method: dict[str, Any] | None
    billing_info: dict[str, Any] | None
    subscribed_since: datetime | None
    ended_at: datetime | None = None


def subscription_card(session: Session, tenant_id: str) -> SubscriptionCard | None:
    """The subscription fields of the Current plan card, with the last active day of an ended one."""
    subscription = session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id))
    if subscription is None:
        return None
    ended_at = None
    if subscription.status in ("canceled", "incomplete_expired") or (subscription.plan is None
                                                                       and subscription.subscribed_since):
        events = BillingEvent.__table__
        ended_at = session.scalar(
            select(func.max(events.c.occurred_at)).where(
                events.c.subscription_id == subscription.id,
                events.c.event_type.in_((EventType.EXPIRED, EventType.IMMEDIATELY_CANCELLED))))
    return SubscriptionCard(
        status=subscription.status, current_period_end=subscription.current_period_end,
        cancel_at_period_end=subscription.cancel_at_period_end, cancellation_reason=subscription.cancellation_reason,
        payment_method=subscription.payment_method, billing_info=subscription.billing_info,
        subscribed_since=subscription.subscribed_since, ended_at=ended_at,
    )


@dataclass(frozen=True)
class AccountOverview:
    """Everything the side pane and the detail header show of one account."""

    account: AccountRow
    counts: UserCounts
    owners: list[Member]
    recent_members: list[Member]
    last_invoice: LastInvoice | None
    lifetime_value: Decimal
    currency: str
    stripe_url: str | None = None  # the customer's page in Stripe's dashboard, once the account has a customer


def account_overview(session: Session, tenant_id: str, *, plan_order: Sequence[str], platform_currency: str,
                     now: datetime, stripe_secret_key: str | None = None,
                     stripe_api_base: str | None = None) -> AccountOverview | None:
    """The account's summary; lifetime value by the one net-revenue query, in the account's currency.

    The secret key only tells test mode from live: Stripe's dashboard shows test customers under `/test`; an API
    base other than Stripe's (the sandbox) has no dashboard to link to.
    """
    account = get_account(session, tenant_id, plan_order=plan_order)
    if account is None:
        return None
    currency = account.currency or platform_currency
    customer = account.stripe_customer_id
    return AccountOverview(
        account=account, counts=user_counts(session, tenant_id, now), owners=owners(session, tenant_id),
        recent_members=recent_members(session, tenant_id), last_invoice=last_invoice(session, tenant_id),
        lifetime_value=lifetime_value(session, currency, tenant_id), currency=currency,
        stripe_url=customer_url(stripe_secret_key, customer, stripe_api_base) if customer else None,
    )


@dataclass(frozen=True)
class DriftState:
    """The account's drift as the last check left it: flagged or acknowledged, with its discrepancies."""

    detected: bool
    discrepancies: list[dict[str, Any]]
    checked_at: datetime | None
    acknowledged_at: datetime | None


def recovery_state(session: Session, tenant_id: str, now: datetime) -> RecoveryOffer | None:
    """The disaster recovery the account is offered (DESIGN §4.11), or None when there is nothing to recover."""
    subscription = session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id))
    if subscription is None:
        return None
    offer = recovery_offer(session, subscription, now)
    return offer if offer.offered else None


def drift_state(session: Session, tenant_id: str) -> DriftState | None:
    """None when there is nothing to show: no subscription, or no discrepancy ever found."""
    row = session.execute(select(SUBSCRIPTIONS.c.has_drift_detected, SUBSCRIPTIONS.c.drift_discrepancies,
                                 SUBSCRIPTIONS.c.drift_checked_at, SUBSCRIPTIONS.c.drift_acknowledged_at)
                          .where(SUBSCRIPTIONS.c.tenant_id == tenant_id)).first()
    if row is None or not (row.has_drift_detected or row.drift_discrepancies):
        return None
    return DriftState(bool(row.has_drift_detected), list(row.drift_discrepancies or []), row.drift_checked_at,
                      row.drift_acknowledged_at)
