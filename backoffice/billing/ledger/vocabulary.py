"""The ledger's vocabulary, once (DESIGN §3, §4.5, §4.9): event types, movements, account statuses, the free plan.

Each is a `StrEnum`, so a member is the very string PostgreSQL stores and compares; the groups the rules, the
lists and the dashboard use are built here from the members, never spelled again elsewhere.
"""
from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class EventType(StrEnum):
    """A ledger row's type: the seed's 20, and the baseline of a disaster recovery (DESIGN §4.11)."""

    CREATED = "SubscriptionCreated"
    RENEWED = "SubscriptionRenewed"
    UPGRADED = "SubscriptionUpgraded"
    DOWNGRADE_SCHEDULED = "SubscriptionDowngradeScheduled"
    DOWNGRADE_CANCELLED = "SubscriptionDowngradeCancelled"
    DOWNGRADED = "SubscriptionDowngraded"
    CANCELLED = "SubscriptionCancelled"
    REACTIVATED = "SubscriptionReactivated"
    EXPIRED = "SubscriptionExpired"
    IMMEDIATELY_CANCELLED = "SubscriptionImmediatelyCancelled"
    SUSPENDED = "SubscriptionSuspended"
    PAST_DUE = "SubscriptionPastDue"
    PAYMENT_FAILED = "PaymentFailed"
    PAYMENT_RECOVERED = "PaymentRecovered"
    PAYMENT_REFUNDED = "PaymentRefunded"
    BILLING_INFO_ADDED = "BillingInfoAdded"
    BILLING_INFO_UPDATED = "BillingInfoUpdated"
    PAYMENT_METHOD_UPDATED = "PaymentMethodUpdated"
    NO_OP = "NoOp"
    UNCLASSIFIED = "Unclassified"
    BASELINE = "LedgerBaseline"


E = EventType
# Rows that carry amounts: previous, new and delta (DESIGN §4.5).
MRR_TYPES = frozenset({E.CREATED, E.UPGRADED, E.DOWNGRADE_SCHEDULED, E.DOWNGRADE_CANCELLED, E.DOWNGRADED,
                       E.CANCELLED, E.REACTIVATED, E.EXPIRED, E.IMMEDIATELY_CANCELLED, E.SUSPENDED, E.BASELINE})
CHURN_TYPES = frozenset({E.CANCELLED, E.IMMEDIATELY_CANCELLED, E.EXPIRED, E.SUSPENDED})
CONTRACTION_TYPES = frozenset({E.DOWNGRADE_SCHEDULED, E.DOWNGRADED})
EXPANSION_TYPES = frozenset({E.UPGRADED, E.DOWNGRADE_CANCELLED})
# A subscription that ends (the seed shows "cancelled plan → free plan").
ENDINGS = frozenset({E.CANCELLED, E.IMMEDIATELY_CANCELLED, E.EXPIRED})
# The rows that change what the account is on (the billing events list's "state" lens).
STATE_TYPES = frozenset({E.CREATED, E.UPGRADED, E.DOWNGRADED, E.EXPIRED, E.IMMEDIATELY_CANCELLED, E.SUSPENDED})
OTHER_TYPES = frozenset(EventType) - MRR_TYPES


class Movement(StrEnum):
    """What an MRR row did to MRR (DESIGN §4.9); they sum to the change over any period."""

    NEW = "new"
    REACTIVATION = "reactivation"
    EXPANSION = "expansion"
    CONTRACTION = "contraction"
    CHURN = "churn"
    OTHER = "other"


class AccountStatus(StrEnum):
    """An account's billing status (reference §6), in the order the accounts list sorts and filters by."""

    ACTIVE = "active"
    DOWNGRADING = "downgrading"
    CANCELING = "canceling"
    CANCELED = "canceled"
    FREE = "free"


def free_plan(plan_order: Sequence[str]) -> str:
    """The free plan: the first of PLAN_ORDER (DESIGN §4.1), which has no Stripe price."""
    return plan_order[0]
