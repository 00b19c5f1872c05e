"""Restatement (DESIGN §4.6): rows that were computed wrong — a rule fixed, a price or coupon learned late —
repaired by appending corrections, caused by `restatement:<audit id>`. Nothing is updated or deleted.

The differences are those `flask billing verify` lists, found with the replay's own rules; the repair is a
replay of each affected customer under its lock, so the rollups and every read model follow the corrections
as they follow a late event's. Idempotent: once restated, a second run finds nothing and appends nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.billing.models import Subscription
from backoffice.billing.replay import Replayer, ReplaySettings
from backoffice.billing.replay.verify import Difference, verify_ledger
from backoffice.operators.audit import record_action

STALE = "BillingEventDenormalizationStale"
BATCH = 50
# The audit entry lists this many of the differences it repaired; its counts say how many there were in all.
LISTED = 200


@dataclass
class Restatement:
    """What a restatement found, and (unless a dry run) what it appended."""

    differences: list[Difference] = field(default_factory=list)
    corrected: int = 0
    customers: list[str] = field(default_factory=list)
    audit_id: int | None = None
    # Processed events with no row at all: history a Sync or a disaster recovery restores (DESIGN §4.11).
    rowless: list[Difference] = field(default_factory=list)
    # Customers whose prices or coupons cannot be had now: restated once they can.
    unpriced: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"differences": len(self.differences), "corrected": self.corrected, "customers": self.customers,
                "rowless": len(self.rowless), "unpriced": [d.customer_id for d in self.unpriced],
                "changes": [str(d) for d in self.differences[:LISTED]]}


def find(session: Session, replayer: Replayer, customers: list[str] | None = None) -> Restatement:
    """The differences between the effective ledger and today's recomputation, sorted by what repairs them."""
    found = Restatement()
    for difference in verify_ledger(session, replayer.rules, customers=customers):
        if difference.field == "pricing":
            found.unpriced.append(difference)
        elif difference.field == "row" and difference.stored is None:
            found.rowless.append(difference)
        else:
            found.differences.append(difference)
    found.customers = sorted({d.customer_id for d in found.differences})
    return found


def restate(session: Session, settings: ReplaySettings, gateway: Any, *, operator_id: str, reason: str,
            customers: list[str] | None = None, tenant_id: str | None = None, dry_run: bool = False) -> Restatement:
    """Find what differs and, unless `dry_run`, append its corrections under one audited action (the caller
    commits). Nothing to restate: nothing appended, not even an audit entry."""
    if not reason.strip():
        raise ValueError("a reason is required")
    replayer = Replayer(session, settings, gateway)
    found = find(session, replayer, customers)
    if dry_run or not found.customers:
        return found
    # Audited first, with what it will change: the corrections name the entry that caused them.
    action = record_action(session, operator_id, "restate", reason, tenant_id=tenant_id,
                           parameters={"customers": customers or "all"}, result=found.as_dict())
    found.audit_id = action.id
    cause = f"restatement:{action.id}"
    for start in range(0, len(found.customers), BATCH):
        for report in replayer.replay_many(found.customers[start:start + BATCH], restatement=cause):
            found.corrected += report.corrected
    _clear_stale(session, found.customers)
    return found


def _clear_stale(session: Session, customers: list[str]) -> None:
    """The stale rows a Sync reported are restated now: their discrepancies go, the flag follows what is left."""
    for subscription in session.scalars(select(Subscription).where(Subscription.stripe_customer_id.in_(customers))):
        items = subscription.drift_discrepancies or []
        kept = [item for item in items if item.get("kind") != STALE]
        if kept != items:
            subscription.drift_discrepancies = kept
            subscription.has_drift_detected = any(not item.get("acknowledged") for item in kept)
