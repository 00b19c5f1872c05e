"""The as-of state the rules walk with (DESIGN §4.4–§4.5): each object's latest `data.object` by id, the
customer's current subscription and schedule, and the committed MRR of the preceding row."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from backoffice.billing.ledger.ordering import ArchivedEvent
from backoffice.billing.ledger.pricing import (
    ENDED_STATUSES,
    ZERO,
    Lookup,
    Pricing,
    forward_mrr,
    schedule_target_items,
)
from backoffice.billing.ledger.resolvers import Item, Resolver, ref_id

Obj = dict[str, Any]


class AsOf:
    """The as-of state while walking the events: objects by id, the customer's subscription and schedule."""

    def __init__(self, pricing: Pricing, lookup: Lookup, tax_rate: Decimal | None = None):
        self.pricing = pricing
        self.catalog = pricing.catalog
        self.lookup = lookup
        self.tax_rate = tax_rate  # the customer's (DESIGN §4.1), one for all its rows
        self.subscription_id: str | None = None
        self.schedule_id: str | None = None
        self.customer_id: str | None = None
        self.committed = ZERO
        self.had_mrr = False
        self.resolver: Resolver | None = None
        # Each subscription payload's items, read once: the rules ask for the as-of subscription's plan at every
        # event, and for an event's own subscription several times. Keyed by the payload's identity, which the
        # entry keeps alive so that no other dict can take its id; payloads are never modified.
        self._items: dict[tuple[int, Resolver], tuple[Obj, list[Item]]] = {}

    @property
    def objects(self) -> dict[str, Obj]:
        return self.lookup.objects

    @property
    def subscription(self) -> Obj | None:
        return self.objects.get(self.subscription_id) if self.subscription_id else None

    @property
    def schedule(self) -> Obj | None:
        return self.objects.get(self.schedule_id) if self.schedule_id else None

    def plan(self, resolver: Resolver, subscription: Obj | None = None) -> str | None:
        """The plan of a subscription (default: the as-of one); None once it has ended or has none."""
        subscription = subscription if subscription is not None else self.subscription
        if not subscription or subscription.get("status") in ENDED_STATUSES:
            return None
        return self.pricing.plan(self.items(resolver, subscription))

    def items(self, resolver: Resolver, subscription: Obj) -> list[Item]:
        """A subscription payload's items (shared between callers: read them, never change them)."""
        key = (id(subscription), resolver)
        known = self._items.get(key)
        if known is None:
            known = self._items[key] = (subscription, resolver.subscription_items(subscription))
        return known[1]

    def scheduled_plan(self, resolver: Resolver, schedule: Obj | None = None) -> str | None:
        """The last phase's plan of the as-of schedule while it is in force and differs from the current plan."""
        schedule = schedule if schedule is not None else self.schedule
        subscription = self.subscription
        if not subscription or not schedule or ref_id(schedule.get("subscription")) not in (None, subscription.get("id")):
            return None
        target = schedule_target_items(schedule, resolver)
        target_plan = self.pricing.plan(target) if target else None
        return target_plan if target_plan and target_plan != self.plan(resolver) else None

    def forward(self, resolver: Resolver, subscription: Obj | None, schedule: Obj | None) -> Decimal:
        current = self.items(resolver, subscription) if subscription else None
        return forward_mrr(subscription, schedule, self.catalog, resolver, self.lookup, self.tax_rate, current)

    def currency(self, resolver: Resolver) -> str | None:
        return resolver.subscription_currency(self.subscription) if self.subscription else None

    def remember(self, event: ArchivedEvent) -> None:
        """Make the event's object the as-of state of its id, and follow the customer's current objects."""
        obj = event.object
        object_id = event.object_id
        if not object_id:
            return
        self.objects[object_id] = obj
        kind = obj.get("object")
        if kind == "subscription":
            self.subscription_id = object_id
        elif kind == "subscription_schedule":
            self.schedule_id = object_id
        elif kind == "customer":
            self.customer_id = object_id
