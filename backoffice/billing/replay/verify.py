"""`flask billing verify`: recompute every ledger row and payment from the archive, in memory, and list the
differences.

Writes nothing. A difference means the stored (effective) ledger or a payment no longer follows from the
archive under today's rules and catalog: a missed correction, a price learned late, a bug, or a hand edit.
The recomputation uses the replay's own rules, pricing and links (one `Replayer`), so verify cannot price
differently from the replay.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.billing.ledger.payments import fold_payments
from backoffice.billing.ledger.pricing import MissingKnowledge
from backoffice.billing.ledger.rules import BASELINE, LedgerRules
from backoffice.billing.models import PaymentTransaction, Subscription
from backoffice.billing.replay import (
    Replayer,
    ReplaySettings,
    as_archived,
    customer_events,
    effective_rows_of,
    stored_baselines,
)

PAYMENTS = PaymentTransaction.__table__
PAYMENT_FIELDS = tuple(name for name in PAYMENTS.columns.keys()
                       if name not in ("id", "subscription_id", "tenant_id", "created_at", "modified_at"))


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
    for difference, _ in _verify(session, rules, None, batch, customers):
        yield difference


@dataclass
class Verification:
    ledger: list[Difference]
    payments: list[Difference]

    @property
    def clean(self) -> bool:
        return not self.ledger and not self.payments


def verify_books(session: Session, settings: ReplaySettings, gateway: Any = None,
                 customers: list[str] | None = None) -> Verification:
    """The ledger and the payments against one recomputation with the replay's own rules and lookups."""
    replayer = Replayer(session, settings, gateway)
    found = Verification([], [])
    for difference, of_payments in _verify(session, replayer.rules, replayer, 200, customers):
        (found.payments if of_payments else found.ledger).append(difference)
    return found


def _verify(session: Session, rules: LedgerRules, replayer: Replayer | None, batch: int,
            customers: list[str] | None) -> Iterator[tuple[Difference, bool]]:
    """Each customer's processed archive recomputed once: the ledger's differences and, with a replayer (its catalog
    and charge links), the payments' (flagged True)."""
    for chunk, events in _linked(session, batch, customers):
        ids = [subscription_id for subscription_id, _, _ in chunk]
        stored_rows = effective_rows_of(session, ids)
        stored_payments: dict[str, dict[str, Any]] = {}
        if replayer is not None:
            for row in session.execute(select(PAYMENTS).where(PAYMENTS.c.subscription_id.in_(ids))):
                stored_payments.setdefault(row.subscription_id, {})[row.id] = row
        for subscription_id, customer_id, complete_from in chunk:
            processed = [row for row in events[customer_id] if row.status == "processed"]
            baselines = stored_baselines(session, subscription_id) if complete_from else []
            try:
                replayed = rules.replay(as_archived(processed), baselines=baselines)
                payments = (fold_payments(replayed.ordered, replayer.catalog, replayer.charge_invoice)
                            if replayer is not None else [])
            except MissingKnowledge as missing:
                yield Difference(customer_id, "-", "pricing", None, f"cannot price: {missing}"), False
                continue
            computed = {row.stripe_event_id: row for row in replayed.rows if _compared(row, complete_from)}
            stored = {event_id: row for event_id, row in stored_rows.get(subscription_id, {}).items()
                      if _compared(row, complete_from)}
            for difference in _differences(customer_id, computed, stored):
                yield difference, False
            if replayer is not None:
                for difference in _payment_differences(customer_id, payments, stored_payments.get(subscription_id, {})):
                    yield difference, True


def _payment_differences(customer_id: str, payments: list[Any], kept: dict[str, Any]) -> Iterator[Difference]:
    kept = dict(kept)
    for payment in payments:
        row = kept.pop(payment.id, None)
        if row is None:
            yield Difference(customer_id, payment.id, "payment", None, payment.status)
            continue
        values = payment.values()
        for name in PAYMENT_FIELDS:
            if getattr(row, name) != values[name]:
                yield Difference(customer_id, payment.id, name, getattr(row, name), values[name])
    for payment_id, row in kept.items():
        yield Difference(customer_id, payment_id, "payment", row.status, None)


def _linked(session: Session, batch: int, customers: list[str] | None) -> Iterator[tuple[list[Any], dict[str, Any]]]:
    """The linked subscriptions (id, customer, history_complete_from) in chunks, each with its customers' events."""
    query = (select(Subscription.id, Subscription.stripe_customer_id, Subscription.history_complete_from)
             .where(Subscription.stripe_customer_id.is_not(None)))
    if customers is not None:
        query = query.where(Subscription.stripe_customer_id.in_(customers))
    linked = session.execute(query.order_by(Subscription.stripe_customer_id)).all()
    for start in range(0, len(linked), batch):
        chunk = linked[start:start + batch]
        yield chunk, customer_events(session, [customer_id for _, customer_id, _ in chunk])


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
