"""Operator actions on the ledger, each audited with the operator's reason."""
from __future__ import annotations

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
