"""`flask billing verify`: recompute every ledger row from the archive, in memory, and list the differences.

Writes nothing. A difference means the stored (effective) ledger no longer follows from the archive under
today's rules: a missed correction, a bug, or a hand edit.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.billing.ledger_rules import BASELINE, LedgerRules
from backoffice.billing.models import Subscription
from backoffice.billing.replay import as_archived, customer_events, effective_rows_of, stored_baselines


@dataclass(frozen=True)
class Difference:
    customer_id: str
    stripe_event_id: str
    field: str
    stored: Any
    recomputed: Any

    def __str__(self) -> str:
        return (f"{self.customer_id} {self.stripe_event_id}: {self.field} stored {self.stored!r}, "
                f"recomputed {self.recomputed!r}")


def verify_ledger(session: Session, rules: LedgerRules, batch: int = 200,
                  customers: list[str] | None = None) -> Iterator[Difference]:
    """Yield every difference between the effective ledger and a recomputation of the processed archive
    (of every linked customer, or of the given ones)."""
    query = (select(Subscription.id, Subscription.stripe_customer_id, Subscription.history_complete_from)
             .where(Subscription.stripe_customer_id.is_not(None)))
    if customers is not None:
        query = query.where(Subscription.stripe_customer_id.in_(customers))
    linked = session.execute(query.order_by(Subscription.stripe_customer_id)).all()
    for start in range(0, len(linked), batch):
        chunk = linked[start:start + batch]
        events = customer_events(session, [customer_id for _, customer_id, _ in chunk])
        stored_rows = effective_rows_of(session, [subscription_id for subscription_id, _, _ in chunk])
        for subscription_id, customer_id, complete_from in chunk:
            processed = [row for row in events[customer_id] if row.status == "processed"]
            baselines = stored_baselines(session, subscription_id) if complete_from else []
            computed = {row.stripe_event_id: row for row in rules.replay(as_archived(processed), baselines=baselines).rows
                        if _compared(row, complete_from)}
            stored = {event_id: row for event_id, row in stored_rows.get(subscription_id, {}).items()
                      if _compared(row, complete_from)}
            yield from _differences(customer_id, computed, stored)


def _compared(row: Any, complete_from: datetime | None) -> bool:
    """A baseline is given, not computed; history up to it stands as it is (DESIGN §4.11)."""
    return row.event_type != BASELINE and (complete_from is None or row.occurred_at > complete_from)


def _differences(customer_id: str, computed: dict[str, Any], stored: dict[str, Any]) -> Iterator[Difference]:
    for event_id in sorted(set(computed) | set(stored)):
        row, kept = computed.get(event_id), stored.get(event_id)
        if kept is None:
            yield Difference(customer_id, event_id, "row", None, row.event_type)
        elif row is None:
            yield Difference(customer_id, event_id, "row", kept.event_type, None)
        else:
            for name, value in row.values().items():
                if getattr(kept, name) != value:
                    yield Difference(customer_id, event_id, name, getattr(kept, name), value)
