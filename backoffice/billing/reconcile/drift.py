"""Drift detection (DESIGN §5): what the local books and Stripe disagree on, recomputed from scratch each check.

Every kind is derived from durable facts (the archive's statuses and errors, its divergences, the ledger,
the payments, the projection) plus, when Stripe answers, its live state of the subscription. Nothing is
carried over from an earlier check, so nothing is lost between checks. `record` writes only the drift
columns, with one UPDATE and no row lock, so a check never blocks or races a replay.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import cast, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from backoffice.billing.ledger.vocabulary import EventType
from backoffice.billing.models import (
    BillingEvent,
    LedgerTip,
    PaymentTransaction,
    StripeEvent,
    StripeEventDivergence,
    StripeEventState,
    Subscription,
    archived_with_states,
    effective_billing_events,
)

WARNING, CRITICAL = "Warning", "Critical"
SEVERITY = {
    "MissingEvent": WARNING,
    "MissingHistoricalEvent": WARNING,
    "MissingHistoricalEventUnrecoverable": CRITICAL,
    "UnclassifiedStripeEvent": WARNING,
    "UnsupportedStripeApiVersion": CRITICAL,
    "StripeEventPayloadDivergence": WARNING,
    "SubscriptionStateMismatch": CRITICAL,
    "ScheduledPriceMissing": CRITICAL,
    "BillingEventDenormalizationStale": WARNING,
    "AmountExcludingTaxClamped": WARNING,
    "CurrencyMismatch": CRITICAL,
    "DuplicateCustomerForTenant": CRITICAL,
    "PricingKnowledgeMissing": WARNING,
}
# Kinds a reconcile repairs (it recovers events and replays); the others wait for an admin's acknowledgement.
RECOVERABLE = {"MissingEvent", "MissingHistoricalEvent", "SubscriptionStateMismatch"}
EVENTS = StripeEvent.__table__
STATES = StripeEventState.__table__
LEDGER = BillingEvent.__table__
TIPS = LedgerTip.__table__
PAYMENTS = PaymentTransaction.__table__


@dataclass(frozen=True)
class Discrepancy:
    """One disagreement, as the account page lists it."""

    kind: str
    message: str
    severity: str = ""
    expected: str | None = None
    actual: str | None = None
    event_id: str | None = None
    # When the event or resource it is about happened (ISO 8601, UTC), where that is known.
    at: str | None = None
    field: str | None = None  # a stale ledger row's column, so the page can group a row's fields together

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["severity"] = self.severity or SEVERITY.get(self.kind, WARNING)
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class LiveSubscription:
    """Stripe's state of the customer's subscription, as the projection would hold it (None: no subscription)."""

    plan: str | None
    cancel_at_period_end: bool
    price_amount: Decimal | None
    currency: str | None


def _archive_errors(session: Session, customer_id: str, prefix: str) -> list[tuple[str, str]]:
    return list(session.execute(
        select(EVENTS.c.id, STATES.c.error).select_from(archived_with_states())
        .where(EVENTS.c.stripe_customer_id == customer_id, STATES.c.status.in_(("ignored", "failed")),
               STATES.c.error.like(prefix + ":%"))
        .order_by(EVENTS.c.stripe_created_at)).all())


def durable_discrepancies(session: Session, subscription: Subscription) -> list[Discrepancy]:
    """The kinds the local facts alone reveal."""
    found: list[Discrepancy] = []
    customer = subscription.stripe_customer_id
    rows = session.scalar(select(func.count()).where(LEDGER.c.subscription_id == subscription.id))
    payments = session.scalar(select(func.count()).where(PAYMENTS.c.subscription_id == subscription.id))
    if payments and not rows:
        found.append(Discrepancy("MissingEvent", "payments were recorded but the ledger has no row",
                                 expected=f"≥ 1 ledger row for {payments} payments", actual="0"))
    if subscription.scheduled_plan and subscription.scheduled_price_amount is None:
        found.append(Discrepancy("ScheduledPriceMissing", "a downgrade is scheduled but its price is unknown",
                                 expected=subscription.scheduled_plan, actual="no price"))
    # Any currency is welcome (the reports convert it); Stripe and the ledger must only agree on which it is.
    stripe_currency = subscription.current_price_currency
    ledger_currency = session.scalar(select(TIPS.c.currency).where(TIPS.c.subscription_id == subscription.id)
                                     .order_by(TIPS.c.occurred_at.desc(), TIPS.c.position.desc()).limit(1))
    if stripe_currency and ledger_currency and stripe_currency != ledger_currency:
        found.append(Discrepancy("CurrencyMismatch", "Stripe bills the subscription in another currency than the "
                                 "ledger's latest row", expected=stripe_currency, actual=ledger_currency))
    # The effective ledger: a row restated out of Unclassified no longer is one.
    view = effective_billing_events
    for event_id, in session.execute(select(view.c.stripe_event_id).where(
            view.c.subscription_id == subscription.id, view.c.event_type == EventType.UNCLASSIFIED)):
        found.append(Discrepancy("UnclassifiedStripeEvent", "an event the ledger could not classify", event_id=event_id))
    for payment_id, in session.execute(select(PAYMENTS.c.id).where(
            PAYMENTS.c.subscription_id == subscription.id, PAYMENTS.c.amount_excluding_tax == 0,
            PAYMENTS.c.tax_amount > 0, PAYMENTS.c.amount < PAYMENTS.c.tax_amount)):
        found.append(Discrepancy("AmountExcludingTaxClamped", "tax exceeds the invoice total; its ex-VAT amount is 0",
                                 event_id=payment_id))
    if customer:
        versions: dict[str, str] = {}
        for event_id, error in _archive_errors(session, customer, "UnsupportedStripeApiVersion"):
            versions.setdefault(error.split(": ", 1)[-1].split(" ", 1)[0].strip("'"), event_id)
        found += [Discrepancy("UnsupportedStripeApiVersion", "events in an API version the ledger does not read",
                              actual=version, event_id=event_id) for version, event_id in versions.items()]
        duplicate = _archive_errors(session, customer, "DuplicateCustomerForTenant")
        if duplicate:
            found.append(Discrepancy("DuplicateCustomerForTenant", duplicate[0][1].split(": ", 1)[-1],
                                     event_id=duplicate[0][0]))
        divergent = session.execute(
            select(StripeEventDivergence.stripe_event_id)
            .join(StripeEvent, StripeEvent.id == StripeEventDivergence.stripe_event_id)
            .where(StripeEvent.stripe_customer_id == customer).distinct()).scalars().all()
        found += [divergence(event_id) for event_id in divergent]
    return found


# The kinds `durable_discrepancies` finds: the local facts alone decide them, so a replay refreshes them at once.
# PricingKnowledgeMissing is raised by a replay that waits (`waiting_on`) and goes with the next one that does not.
DURABLE = frozenset({"MissingEvent", "ScheduledPriceMissing", "CurrencyMismatch", "UnclassifiedStripeEvent",
                     "AmountExcludingTaxClamped", "UnsupportedStripeApiVersion", "DuplicateCustomerForTenant",
                     "StripeEventPayloadDivergence", "PricingKnowledgeMissing"})
WAITING = "PricingKnowledgeMissing"


def waiting_on(subscription: Subscription, missing: str) -> None:
    """Say on the account that its events wait for a price, discount or coupon nobody can give now (DESIGN §4.6):
    nothing is written for them until it can be had."""
    item = Discrepancy(WAITING, "the events wait for what Stripe cannot give now; nothing is written until it can",
                       expected=missing, actual="unknown").as_json()
    items = [i for i in subscription.drift_discrepancies or [] if i.get("kind") != WAITING]
    if item not in (subscription.drift_discrepancies or []):
        subscription.drift_discrepancies = [*items, item]
        subscription.has_drift_detected = True


def refresh_durable(session: Session, subscription: Subscription) -> None:
    """Raise (or clear) the kinds the local facts decide the moment the replay writes them (an Unclassified row
    flips the flag as it is written), keeping what the last full check found of the other kinds."""
    kept = [item for item in subscription.drift_discrepancies or [] if item.get("kind") not in DURABLE]
    acknowledged = {_key(item) for item in subscription.drift_discrepancies or [] if item.get("acknowledged")}
    fresh = [item.as_json() for item in durable_discrepancies(session, subscription)]
    for item in fresh:
        if _key(item) in acknowledged:
            item["acknowledged"] = True
    items = kept + fresh
    if items != (subscription.drift_discrepancies or []):
        subscription.drift_discrepancies = items
        subscription.has_drift_detected = any(not item.get("acknowledged") for item in items)


def divergence(event_id: str) -> Discrepancy:
    return Discrepancy("StripeEventPayloadDivergence", "the same event id arrived with another body", event_id=event_id)


def flag_customer(connection: Any, customer_id: str, found: Discrepancy) -> None:
    """Raise the flag of a customer's subscription for a discrepancy found outside a check (the webhook's divergence),
    unless it is listed already."""
    table = Subscription.__table__
    listed = cast([{"kind": found.kind, "event_id": found.event_id}], JSONB)
    connection.execute(update(table).where(table.c.stripe_customer_id == customer_id,
                                           ~table.c.drift_discrepancies.contains(listed))
                       .values(has_drift_detected=True,
                               drift_discrepancies=table.c.drift_discrepancies.op("||")(cast([found.as_json()], JSONB))))


def state_discrepancies(subscription: Subscription, live: LiveSubscription) -> list[Discrepancy]:
    """The projection against Stripe's live state: plan, price, currency, cancellation."""
    found = []
    if (subscription.plan or None) != (live.plan or None):
        found.append(Discrepancy("SubscriptionStateMismatch", "plan differs from Stripe", severity=CRITICAL,
                                 expected=live.plan or "none", actual=subscription.plan or "none"))
    if live.price_amount is not None and subscription.current_price_amount != live.price_amount:
        found.append(Discrepancy("SubscriptionStateMismatch", "price differs from Stripe", severity=CRITICAL,
                                 expected=str(live.price_amount), actual=str(subscription.current_price_amount)))
    # Whether an ended subscription was set to cancel at period end no longer matters.
    if live.plan is not None and bool(subscription.cancel_at_period_end) != live.cancel_at_period_end:
        found.append(Discrepancy("SubscriptionStateMismatch", "cancel at period end differs from Stripe",
                                 severity=WARNING, expected=str(live.cancel_at_period_end).lower(),
                                 actual=str(bool(subscription.cancel_at_period_end)).lower()))
    if live.currency and subscription.current_price_currency and live.currency != subscription.current_price_currency:
        found.append(Discrepancy("SubscriptionStateMismatch", "currency differs from Stripe", severity=WARNING,
                                 expected=live.currency, actual=subscription.current_price_currency))
    return found


def _key(item: dict[str, Any]) -> tuple[Any, ...]:
    return item.get("kind"), item.get("event_id"), item.get("expected"), item.get("actual")


def record(session: Session, subscription_id: str, found: list[Discrepancy], now: datetime) -> None:
    """Store a check's result: the flag, the list (recomputed, never merged) and when it ran; nothing else.

    A discrepancy an admin acknowledged stays acknowledged while it is found again unchanged, so it is
    listed but raises no flag; a new or changed one raises it.
    """
    table = Subscription.__table__
    previous = session.scalar(select(table.c.drift_discrepancies).where(table.c.id == subscription_id)) or []
    acknowledged = {_key(item) for item in previous if item.get("acknowledged")}
    items = [item.as_json() for item in found]
    for item in items:
        if _key(item) in acknowledged:
            item["acknowledged"] = True
    session.execute(update(table).where(table.c.id == subscription_id).values(
        has_drift_detected=any(not item.get("acknowledged") for item in items), drift_discrepancies=items,
        drift_checked_at=now))


# The archived event each kind of Stripe resource must have (DESIGN §4.11), by the resource's object type.
COVERAGE = {
    "subscription": ("customer.subscription.created",),
    "invoice": ("invoice.payment_succeeded", "invoice.paid"),
    "credit_note": ("credit_note.created",),
    "subscription_schedule": ("subscription_schedule.created",),
}
# Stripe lists events for 30 days: a missing event older than that cannot be recovered from Stripe.
RECOVERY_WINDOW = timedelta(days=30)


def covered_resources(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resources a coverage check expects events for: every subscription, schedule and credit note, and
    the invoices that were paid (a draft or an unpaid invoice promises no payment event)."""
    return [obj for obj in objects if obj.get("object") in COVERAGE
            and (obj.get("object") != "invoice" or (obj.get("status") == "paid" and (obj.get("amount_paid") or 0) > 0))]


def coverage_discrepancies(session: Session, customer_id: str, resources: list[dict[str, Any]], now: datetime,
                           complete_from: datetime | None) -> list[Discrepancy]:
    """Each resource Stripe reports for the customer must have its archived event; missing and recent is
    MissingHistoricalEvent (a reconcile pulls it), missing and older than Stripe's window is unrecoverable.
    Resources from up to `complete_from` (a disaster recovery's cutoff) are covered by its baseline."""
    archived: set[tuple[str, str]] = set()
    types = sorted({t for expected in COVERAGE.values() for t in expected})
    for event_type, object_id in session.execute(
            select(EVENTS.c.type, EVENTS.c.payload["data"]["object"]["id"].astext)
            .where(EVENTS.c.stripe_customer_id == customer_id, EVENTS.c.type.in_(types))):
        archived.add((event_type, object_id))
    found = []
    for resource in covered_resources(resources):
        created = resource.get("created") or 0
        if complete_from is not None and created <= complete_from.timestamp():
            continue
        expected = COVERAGE[resource["object"]]
        if any((event_type, resource["id"]) in archived for event_type in expected):
            continue
        recent = created >= (now - RECOVERY_WINDOW).timestamp()
        kind = "MissingHistoricalEvent" if recent else "MissingHistoricalEventUnrecoverable"
        found.append(Discrepancy(kind, f"{resource['object']} {resource['id']} has no archived {expected[0]}",
                                 expected=expected[0], actual="missing", event_id=resource["id"],
                                 at=datetime.fromtimestamp(created, UTC).isoformat()))
    return found


def stale_rows(session: Session, customer_id: str, rules: Any) -> list[Discrepancy]:
    """Ledger rows a fresh replay of the processed archive would write differently (the seed's
    BillingEventDenormalizationStale): the stored row stays, the difference is reported."""
    from backoffice.billing.replay.verify import verify_ledger

    return [Discrepancy("BillingEventDenormalizationStale", f"{difference.field} differs from a fresh replay",
                        expected=str(difference.recomputed), actual=str(difference.stored),
                        event_id=difference.stripe_event_id, field=difference.field)
            for difference in verify_ledger(session, rules, customers=[customer_id])]
