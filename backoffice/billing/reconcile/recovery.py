"""Disaster recovery (DESIGN §4.11): what the archive and Stripe can no longer give the ledger, and the baseline
that stands in for it.

Offered when (a) processed archived events older than Stripe's 30-day window have no ledger row (a restored
ledger, a lost table), or (b) Stripe objects of that age have no archived event at all (history from before
the webhook existed). The admin picks a cutoff; the Sync that follows writes the rows of (a) after it and, for
(b), one LedgerBaseline row at it, from which the committed MRR goes on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from backoffice.billing.ledger.pricing import ZERO, Pricing, invoice_tax_rate
from backoffice.billing.ledger.resolvers import BasilResolver, Item, list_data, ref_id
from backoffice.billing.ledger.rules import BASELINE, RECOGNIZED_TYPES, LedgerRow, movement_of
from backoffice.billing.models import (
    BillingEvent,
    StripeEvent,
    StripeEventState,
    Subscription,
    archived_with_states,
    effective_billing_events,
)
from backoffice.billing.reconcile.drift import RECOVERY_WINDOW

EVENTS = StripeEvent.__table__
STATES = StripeEventState.__table__
LEDGER = BillingEvent.__table__
UNRECOVERABLE = "MissingHistoricalEventUnrecoverable"
# The panel lists this many archived events; the count says how many there are in all.
LISTED = 100


@dataclass(frozen=True)
class ArchivedWithoutRow:
    event_id: str
    type: str
    at: datetime


@dataclass(frozen=True)
class Gap:
    """A Stripe object with no archived event, too old for Stripe to list it again."""

    resource_id: str
    expected: str
    at: datetime | None
    message: str


@dataclass(frozen=True)
class RecoveryOffer:
    archived: list[ArchivedWithoutRow] = field(default_factory=list)
    archived_count: int = 0
    gaps: list[Gap] = field(default_factory=list)

    @property
    def offered(self) -> bool:
        return bool(self.archived_count or self.gaps)

    @property
    def default_cutoff(self) -> datetime | None:
        """The oldest gap; without gaps, just before the oldest archived event lacking its row."""
        dated = [gap.at for gap in self.gaps if gap.at is not None]
        if dated:
            return min(dated)
        if self.archived:
            return self.archived[0].at - timedelta(seconds=1)
        return None


def rowless_events(subscription: Subscription, before: datetime):
    """Processed archived events of the customer, of a recognized type, before `before`, with no ledger row
    and after the history a former recovery declared complete."""
    query = (select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.stripe_created_at).select_from(archived_with_states())
             .where(EVENTS.c.stripe_customer_id == subscription.stripe_customer_id, STATES.c.status == "processed",
                    EVENTS.c.type.in_(sorted(RECOGNIZED_TYPES)), EVENTS.c.stripe_created_at < before,
                    ~exists().where(LEDGER.c.stripe_event_id == EVENTS.c.id)))
    if subscription.history_complete_from is not None:
        query = query.where(EVENTS.c.stripe_created_at > subscription.history_complete_from)
    return query


def recovery_offer(session: Session, subscription: Subscription, now: datetime) -> RecoveryOffer:
    """What a disaster recovery would take care of for this subscription (nothing: not offered)."""
    if subscription.stripe_customer_id is None:
        return RecoveryOffer()
    query = rowless_events(subscription, now - RECOVERY_WINDOW)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    archived = [ArchivedWithoutRow(row.id, row.type, row.stripe_created_at)
                for row in session.execute(query.order_by(EVENTS.c.stripe_created_at, EVENTS.c.id).limit(LISTED))]
    gaps = [Gap(str(item.get("event_id")), str(item.get("expected") or ""),
                datetime.fromisoformat(item["at"]) if item.get("at") else None, str(item.get("message") or ""))
            for item in subscription.drift_discrepancies or [] if item.get("kind") == UNRECOVERABLE]
    return RecoveryOffer(archived, count, sorted(gaps, key=lambda gap: (gap.at is None, gap.at, gap.resource_id)))


def cutoff_problem(subscription: Subscription, cutoff: datetime, now: datetime) -> str | None:
    """Why a cutoff cannot be used (a code the web layer words), or None: in the future, or inside history an
    earlier recovery already declared complete."""
    if cutoff > now:
        return "cutoff_future"
    if subscription.history_complete_from is not None and cutoff < subscription.history_complete_from:
        return "cutoff_before_complete"
    return None


def invoice_items(invoice: dict[str, Any]) -> list[Item]:
    """The recurring items an invoice charged for (prorations left out), as MRR counts them."""
    items = []
    for line in list_data(invoice.get("lines")):
        if not isinstance(line, dict) or _proration(line):
            continue
        price = line.get("price") if isinstance(line.get("price"), dict) else None
        details = (line.get("pricing") or {}).get("price_details") or {}
        price_id = ref_id(line.get("price")) or ref_id(details.get("price"))
        if price_id is None:
            continue
        quantity = line.get("quantity")
        recurring = (price or {}).get("recurring") or {}
        items.append(Item(price_id=price_id, quantity=quantity if isinstance(quantity, int) else 1,
                          unit_amount=(price or {}).get("unit_amount"),
                          currency=((price or {}).get("currency") or "").upper() or None,
                          interval=recurring.get("interval"), interval_count=recurring.get("interval_count"),
                          tax_behavior=(price or {}).get("tax_behavior"),
                          plan=((price or {}).get("metadata") or {}).get("plan") or None))
    return items


def _proration(line: dict[str, Any]) -> bool:
    parent = (line.get("parent") or {}).get("subscription_item_details") or {}
    return bool(line.get("proration") or parent.get("proration"))


def _ended_by(resources: list[dict[str, Any]], subscription_id: str | None, cutoff: int) -> bool:
    for resource in resources:
        if resource.get("object") == "subscription" and resource.get("id") == subscription_id:
            ended = resource.get("ended_at") or resource.get("canceled_at")
            return resource.get("status") in ("canceled", "incomplete_expired") and bool(ended) and ended <= cutoff
    return False


def baseline_row(session: Session, subscription: Subscription, resources: list[dict[str, Any]], cutoff: datetime,
                 pricing: Pricing, currency: str) -> LedgerRow:
    """The LedgerBaseline row at the cutoff: committed MRR = the forward MRR of the items on the latest invoice
    at or before it (0 once that subscription had ended), after the committed MRR the ledger held then."""
    at = int(cutoff.timestamp())
    invoices = [r for r in resources if r.get("object") == "invoice" and (r.get("created") or 0) <= at
                and r.get("status") in ("paid", "open", "uncollectible")]
    latest = max(invoices, key=lambda invoice: (invoice.get("created") or 0, invoice.get("id") or ""), default=None)
    stripe_subscription = (BasilResolver().invoice_subscription(latest) if latest else None) or \
        subscription.stripe_subscription_id
    items = invoice_items(latest) if latest and not _ended_by(resources, stripe_subscription, at) else []
    amount = pricing.items(items, invoice_tax_rate(latest)) if items else ZERO
    plan = pricing.plan(items)
    view = effective_billing_events
    before = session.execute(
        select(view.c.committed_mrr, view.c.to_plan)
        .where(view.c.subscription_id == subscription.id, view.c.occurred_at <= cutoff)
        .order_by(view.c.occurred_at.desc(), view.c.position.desc()).limit(1)).first()
    previous = before.committed_mrr if before else ZERO
    delta: Decimal = amount - previous
    return LedgerRow(
        stripe_event_id=f"baseline:{stripe_subscription or subscription.id}:{at}", event_type=BASELINE,
        from_plan=before.to_plan if before else None, to_plan=plan, previous_amount=previous, new_amount=amount,
        amount_delta=delta, committed_mrr=amount, movement=movement_of(BASELINE, delta, previous > 0),
        currency=currency, occurred_at=datetime.fromtimestamp(at, UTC), position=0)


def gaps_up_to(found: list[Any], cutoff: datetime) -> list[Any]:
    """The unrecoverable gaps among a coverage check's discrepancies that a baseline at `cutoff` covers."""
    return [item for item in found if item.kind == UNRECOVERABLE and item.at
            and datetime.fromisoformat(item.at) <= cutoff]
