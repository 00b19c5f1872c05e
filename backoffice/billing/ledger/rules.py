"""From a customer's archived events to its ledger rows (DESIGN §4.4–§4.5, the seed's table of reference §1.3).

A pure function of the archive: the same events give the same rows whatever order they arrived in.
Events are put in the §4.4 order, then walked once, keeping each object's as-of state (the latest
`data.object` seen for its id) and the committed MRR of the preceding row.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from backoffice.billing.ledger.as_of import AsOf
from backoffice.billing.ledger.ordering import ArchivedEvent, order_events
from backoffice.billing.ledger.pricing import (
    ENDED_STATUSES,
    ZERO,
    Pricing,
    UnknownPlan,
    customer_tax_rate,
    plan_of,
    schedule_target_items,
)
from backoffice.billing.ledger.resolvers import ApiVersions, Resolver
from backoffice.billing.ledger.vocabulary import (
    CHURN_TYPES,
    CONTRACTION_TYPES,
    EXPANSION_TYPES,
    MRR_TYPES,
    EventType,
    Movement,
    free_plan,
)

Obj = dict[str, Any]

# The seed's recognized types: each gets exactly one row (NoOp included). Others feed the projection only.
RECOGNIZED_TYPES = frozenset({
    "customer.created", "customer.updated", "customer.deleted",
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired",
    "subscription_schedule.created", "subscription_schedule.updated",
    "subscription_schedule.released", "subscription_schedule.canceled",
    "invoice.payment_succeeded", "invoice.payment_failed", "charge.refunded", "payment_method.attached",
})
BILLING_INFO_FIELDS = ("address", "email", "name", "tax_ids")
TERMINAL_SCHEDULE = frozenset({"canceled", "released", "completed"})
UNSUPPORTED_VERSION = "UnsupportedStripeApiVersion"
# A disaster recovery's row standing for history the archive lacks (DESIGN §4.11): the 21st type.
BASELINE = EventType.BASELINE


@dataclass(frozen=True)
class LedgerRow:
    """One ledger row as the rules compute it."""

    stripe_event_id: str
    event_type: str
    from_plan: str | None
    to_plan: str | None
    previous_amount: Decimal | None
    new_amount: Decimal | None
    amount_delta: Decimal | None
    committed_mrr: Decimal
    movement: str | None
    currency: str | None
    occurred_at: datetime
    position: int
    cancellation_reason: str | None = None
    suspension_reason: str | None = None

    VALUE_FIELDS = ("event_type", "from_plan", "to_plan", "previous_amount", "new_amount", "amount_delta",
                    "committed_mrr", "movement")

    def __post_init__(self) -> None:
        # Plain strings, as PostgreSQL stores them and as repr, JSON and the drivers show them.
        object.__setattr__(self, "event_type", str(self.event_type))
        if self.movement is not None:
            object.__setattr__(self, "movement", str(self.movement))

    def values(self) -> dict[str, Any]:
        """The values a correction restates (DESIGN §4.6)."""
        return {name: getattr(self, name) for name in self.VALUE_FIELDS}


@dataclass
class Note:
    """Something the rules could not decide: it becomes a discrepancy (drift) and, for skips, the event's error."""

    kind: str
    event_id: str
    detail: str


@dataclass
class Replayed:
    """The outcome of computing a customer's ledger."""

    rows: list[LedgerRow] = field(default_factory=list)
    # Events not replayed (an unsupported version), with the reason; they stay ignored.
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    ordered: list[ArchivedEvent] = field(default_factory=list)
    state: AsOf | None = None


def _previous_object(event: ArchivedEvent) -> Obj:
    """The object before the event: Stripe's previous_attributes laid over the object after it."""
    return {**event.object, **(event.previous_attributes or {})}


def movement_of(event_type: str, delta: Decimal | None, had_mrr: bool) -> str | None:
    if delta is None or delta == 0:
        return None
    positive = delta > 0
    if event_type == EventType.CREATED and positive:
        return Movement.REACTIVATION if had_mrr else Movement.NEW
    if event_type == EventType.REACTIVATED and positive:
        return Movement.REACTIVATION
    if event_type in EXPANSION_TYPES and positive:
        return Movement.EXPANSION
    if event_type in CONTRACTION_TYPES and not positive:
        return Movement.CONTRACTION
    if event_type in CHURN_TYPES and not positive:
        return Movement.CHURN
    return Movement.OTHER


@dataclass(frozen=True)
class Decision:
    """What the rules decided for one event, before amounts are filled in."""

    event_type: str
    from_plan: str | None = None
    to_plan: str | None = None
    # For MRR rows: the forward MRR after the event.
    new_amount: Decimal | None = None
    cancellation_reason: str | None = None
    suspension_reason: str | None = None


class LedgerRules:
    """The event table of reference §1.3 as refined by DESIGN §4.5."""

    def __init__(self, pricing: Pricing, versions: ApiVersions):
        self.pricing = pricing
        self.catalog = pricing.catalog
        self.free_plan = free_plan(pricing.catalog.plan_order)
        self.versions = versions

    def replay(self, events: Iterable[ArchivedEvent], objects: dict[str, Obj] | None = None,
               baselines: Iterable[LedgerRow] = ()) -> Replayed:
        """Compute every row of a customer's archived events, in the §4.4 order.

        `baselines`: the customer's LedgerBaseline rows (a disaster recovery's, DESIGN §4.11), given whole; each
        takes its place after the last event of its second, and the committed MRR goes on from its amount.
        """
        result = Replayed()
        pending = sorted(baselines, key=lambda row: row.occurred_at)
        replayable = []
        for event in events:
            if self.versions.resolver(event.api_version) is None:
                result.skipped[event.id] = f"{UNSUPPORTED_VERSION}: {event.api_version!r} is not in STRIPE_API_VERSIONS"
                result.notes.append(Note(UNSUPPORTED_VERSION, event.id, str(event.api_version)))
            else:
                replayable.append(event)
        ordered = order_events(replayable)
        latest = {event.object_id: event.object for event in ordered if event.object_id}
        state = AsOf(self.pricing, self.pricing.lookup(objects, latest), customer_tax_rate(latest.values()))
        result.state = state
        second, position = None, 0
        for event in ordered:
            while pending and pending[0].occurred_at.timestamp() < event.created:
                second, position = self._baseline(pending.pop(0), state, result, second, position)
            resolver = self.versions.resolver(event.api_version)
            assert resolver is not None
            result.ordered.append(event)
            position = position + 1 if event.created == second else 0
            second = event.created
            state.resolver = resolver
            if event.type in RECOGNIZED_TYPES:
                try:
                    decision = self._decide(event, resolver, state)
                except UnknownPlan as unknown:
                    result.notes.append(Note("UnclassifiedStripeEvent", event.id, str(unknown)))
                    decision = Decision(EventType.UNCLASSIFIED, to_plan=state.plan(resolver))
                if decision.event_type == EventType.UNCLASSIFIED and not any(n.event_id == event.id for n in result.notes):
                    result.notes.append(Note("UnclassifiedStripeEvent", event.id, "cancellation and plan change at once"))
                from_plan = decision.from_plan
                if from_plan is None and decision.event_type not in MRR_TYPES:
                    # A row that changes no plan is on the as-of plan (DESIGN §4.4): from and to are that plan,
                    # so a transition is never guessed where the ledger knows it.
                    from_plan = state.plan(resolver)
                state.remember(event)
                result.rows.append(self._row(event, decision, from_plan, state, resolver, position))
            else:
                state.remember(event)
        for baseline in pending:
            second, position = self._baseline(baseline, state, result, second, position)
        return result

    @staticmethod
    def _baseline(row: LedgerRow, state: AsOf, result: Replayed, second: int | None,
                  position: int) -> tuple[int, int]:
        at = int(row.occurred_at.timestamp())
        position = position + 1 if at == second else 0
        result.rows.append(replace(row, position=position))
        state.committed = row.committed_mrr
        state.had_mrr = state.had_mrr or row.committed_mrr > 0
        return at, position

    def _row(self, event: ArchivedEvent, decision: Decision, from_plan: str | None, state: AsOf, resolver: Resolver,
             position: int) -> LedgerRow:
        previous = state.committed
        occurred_at = datetime.fromtimestamp(event.created, UTC)
        if decision.event_type in MRR_TYPES:
            new = decision.new_amount if decision.new_amount is not None else ZERO
            delta = new - previous
            movement = movement_of(decision.event_type, delta, state.had_mrr)
            state.committed = new
            state.had_mrr = state.had_mrr or new > 0
            amounts: tuple[Decimal | None, Decimal | None, Decimal | None] = (previous, new, delta)
        else:
            amounts, movement = (None, None, None), None
        return LedgerRow(
            stripe_event_id=event.id, event_type=decision.event_type, from_plan=from_plan,
            to_plan=decision.to_plan, previous_amount=amounts[0], new_amount=amounts[1], amount_delta=amounts[2],
            committed_mrr=state.committed, movement=movement, currency=state.currency(resolver),
            occurred_at=occurred_at, position=position, cancellation_reason=decision.cancellation_reason,
            suspension_reason=decision.suspension_reason,
        )

    # --- the table ----------------------------------------------------------------------------------------
    def _decide(self, event: ArchivedEvent, resolver: Resolver, state: AsOf) -> Decision:
        kind = event.type
        plan = state.plan(resolver)
        if kind == "customer.created":
            return Decision(EventType.BILLING_INFO_ADDED, to_plan=plan)
        if kind == "customer.updated":
            changed = any(name in (event.previous_attributes or {}) for name in BILLING_INFO_FIELDS)
            return Decision(EventType.BILLING_INFO_UPDATED if changed else EventType.NO_OP, to_plan=plan)
        if kind == "payment_method.attached":
            return Decision(EventType.PAYMENT_METHOD_UPDATED, to_plan=plan)
        if kind == "customer.deleted":
            return Decision(EventType.SUSPENDED, from_plan=plan, to_plan=self.free_plan, new_amount=ZERO,
                            suspension_reason="customer_deleted")
        if kind.startswith("customer.subscription."):
            return self._subscription(event, resolver, state)
        if kind.startswith("subscription_schedule."):
            return self._schedule(event, resolver, state)
        obj = event.object
        if kind == "invoice.payment_succeeded":
            if obj.get("billing_reason") != "subscription_cycle":
                return Decision(EventType.NO_OP, to_plan=plan)
            attempts = obj.get("attempt_count") or 0
            return Decision(EventType.PAYMENT_RECOVERED if attempts > 1 else EventType.RENEWED, to_plan=plan)
        if kind == "invoice.payment_failed":
            cycle = obj.get("billing_reason") == "subscription_cycle"
            return Decision(EventType.PAYMENT_FAILED if cycle else EventType.NO_OP, to_plan=plan)
        if kind == "charge.refunded":
            return Decision(EventType.PAYMENT_REFUNDED, to_plan=plan)
        return Decision(EventType.NO_OP, to_plan=plan)

    def _subscription(self, event: ArchivedEvent, resolver: Resolver, state: AsOf) -> Decision:
        kind, after = event.type, event.object
        schedule = state.schedule
        if kind == "customer.subscription.created":
            new_plan = plan_of(state.items(resolver, after), self.catalog)
            return Decision(EventType.CREATED, to_plan=new_plan, new_amount=state.forward(resolver, after, schedule))
        if kind == "customer.subscription.deleted":
            before = state.objects.get(event.object_id or "") or after
            from_plan = state.plan(resolver, {**before, "status": "active"})
            reason = str((after.get("cancellation_details") or {}).get("reason") or "").lower()
            if reason == "payment_failed":
                return Decision(EventType.SUSPENDED, from_plan=from_plan, to_plan=self.free_plan, new_amount=ZERO,
                                suspension_reason="payment_failed")
            expired = bool(before.get("cancel_at_period_end"))
            return Decision(EventType.EXPIRED if expired else EventType.IMMEDIATELY_CANCELLED,
                            from_plan=from_plan, to_plan=self.free_plan, new_amount=ZERO)
        previous = event.previous_attributes
        plan = state.plan(resolver)
        if kind != "customer.subscription.updated" or not previous:
            return Decision(EventType.NO_OP, to_plan=plan)
        before = _previous_object(event)
        new_plan = plan_of(state.items(resolver, after), self.catalog)
        # Items absent from previous_attributes did not change: the very list after is the one before.
        old_plan = plan_of(resolver.subscription_items(before), self.catalog) if "items" in previous else new_plan
        plan_changed = "items" in previous and old_plan is not None and new_plan is not None and old_plan != new_plan
        forward = state.forward(resolver, after, schedule)
        if isinstance(previous.get("cancel_at_period_end"), bool):
            if plan_changed:
                return Decision(EventType.UNCLASSIFIED, to_plan=plan)
            if previous["cancel_at_period_end"] is False:
                return Decision(EventType.CANCELLED, to_plan=plan, new_amount=forward,
                                cancellation_reason=_cancellation_reason(after))
            return Decision(EventType.REACTIVATED, to_plan=plan, new_amount=forward)
        if plan_changed:
            upgrade = self.catalog.rank(new_plan) > self.catalog.rank(old_plan)
            return Decision(EventType.UPGRADED if upgrade else EventType.DOWNGRADED,
                            from_plan=old_plan, to_plan=new_plan, new_amount=forward)
        if after.get("status") in ENDED_STATUSES and before.get("status") not in ENDED_STATUSES:
            # An incomplete subscription whose first payment never came (incomplete_expired).
            return Decision(EventType.EXPIRED, from_plan=old_plan, to_plan=self.free_plan, new_amount=ZERO)
        if forward != state.committed:
            # The same plan at another monthly amount: the amount decides (an MRR change never hides in a NoOp).
            upgrade = forward > state.committed
            return Decision(EventType.UPGRADED if upgrade else EventType.DOWNGRADED,
                            from_plan=old_plan, to_plan=new_plan, new_amount=forward)
        if previous.get("status") == "active" and after.get("status") in ("past_due", "unpaid"):
            return Decision(EventType.PAST_DUE, to_plan=plan)
        return Decision(EventType.NO_OP, to_plan=plan)

    def _schedule(self, event: ArchivedEvent, resolver: Resolver, state: AsOf) -> Decision:
        kind, schedule = event.type, event.object
        plan = state.plan(resolver)
        scheduled_before = state.scheduled_plan(resolver)
        subscription = state.subscription
        if kind in ("subscription_schedule.released", "subscription_schedule.canceled"):
            if scheduled_before is None:
                return Decision(EventType.NO_OP, to_plan=plan)
            return Decision(EventType.DOWNGRADE_CANCELLED, to_plan=plan,
                            new_amount=state.forward(resolver, subscription, schedule))
        # created and updated: the seed waits for .updated, but a schedule created with its phases at once
        # schedules the change just the same.
        if schedule.get("status") in TERMINAL_SCHEDULE:
            return Decision(EventType.NO_OP, to_plan=plan)
        target_items = schedule_target_items(schedule, resolver)
        if not target_items or not subscription:
            return Decision(EventType.NO_OP, to_plan=plan)
        target = plan_of(target_items, self.catalog)
        forward = state.forward(resolver, subscription, schedule)
        if (target == plan or target == scheduled_before) and forward == state.committed:
            return Decision(EventType.NO_OP, to_plan=plan)
        return Decision(EventType.DOWNGRADE_SCHEDULED, from_plan=plan, to_plan=target, new_amount=forward)


def _cancellation_reason(subscription: Obj) -> str | None:
    details = subscription.get("cancellation_details") or {}
    return details.get("feedback") or details.get("reason") or None
