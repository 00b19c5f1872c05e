"""Operator actions on the ledger, each audited with the operator's reason."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.billing.models import Subscription
from backoffice.operators.audit import record_action


class NothingToReplay(ValueError):
    """The account has no Stripe customer, so there is no archive to replay."""


def audit_account_replay(session: Session, tenant_id: str, operator_id: str, reason: str) -> str:
    """Audit an operator's replay of the account's archived events; return the customer to replay."""
    if not reason.strip():
        raise ValueError("a reason is required")
    customer_id = session.scalar(select(Subscription.stripe_customer_id).where(Subscription.tenant_id == tenant_id))
    if customer_id is None:
        raise NothingToReplay(tenant_id)
    record_action(session, operator_id, "replay", reason, tenant_id=tenant_id,
                  parameters={"customer": customer_id})
    return customer_id


def audit_sweep(session: Session, operator_id: str, reason: str) -> None:
    """Audit an operator's start of the drift sweep (the caller commits, then queues it)."""
    if not reason.strip():
        raise ValueError("a reason is required")
    record_action(session, operator_id, "sweep", reason)


def audit_requeue(session: Session, operator_id: str, reason: str, failures: list[dict]) -> list[str]:
    """Audit an operator's requeue of the last sweep's failed checks; return the subscriptions to check again."""
    if not reason.strip():
        raise ValueError("a reason is required")
    ids = sorted({failure["subscription"] for failure in failures})
    record_action(session, operator_id, "sweep", reason, parameters={"requeued": len(ids)})
    return ids


class NoDriftToAcknowledge(ValueError):
    """The account's subscription has no drift flagged (or no subscription at all)."""


def acknowledge_drift(session: Session, tenant_id: str, operator_id: str, reason: str, now: datetime) -> int:
    """Clear the account's drift flag, keeping its discrepancies for the record; audited. Return how many
    discrepancies were acknowledged."""
    if not reason.strip():
        raise ValueError("a reason is required")
    subscription = session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id).with_for_update())
    if subscription is None or not subscription.has_drift_detected:
        raise NoDriftToAcknowledge(tenant_id)
    subscription.has_drift_detected = False
    subscription.drift_acknowledged_at = now
    subscription.drift_acknowledged_by = operator_id
    # Marked one by one: a later check finding the same discrepancy keeps it acknowledged (drift.record).
    subscription.drift_discrepancies = [{**item, "acknowledged": True} for item in subscription.drift_discrepancies or []]
    kinds = sorted({str(item.get("kind")) for item in subscription.drift_discrepancies})
    record_action(session, operator_id, "acknowledge_drift", reason, tenant_id=tenant_id,
                  parameters={"kinds": kinds}, result={"acknowledged": len(subscription.drift_discrepancies or [])})
    return len(subscription.drift_discrepancies or [])
