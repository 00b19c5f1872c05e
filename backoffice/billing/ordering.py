"""The total order of a customer's events (DESIGN §4.4): never arrival order, which Stripe does not keep.

Events are ordered by Stripe's `created`. Within one second, state chaining decides first: starting from
each object's state before that second, the next event is one whose `previous_attributes` match the current
state of its object. Where chaining does not decide, a fixed type precedence, then the event id.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

Obj = dict[str, Any]

PRECEDENCE = (
    "customer.created",
    "customer.updated",
    "payment_method.attached",
    "customer.subscription.created",
    "subscription_schedule.created",
    "subscription_schedule.updated",
    "customer.subscription.updated",
    ("subscription_schedule.released", "subscription_schedule.canceled", "subscription_schedule.completed"),
    "invoice.*",
    "invoice_payment.paid",
    "charge.*",
    "credit_note.*",
    "customer.subscription.deleted",
    "customer.deleted",
)


def _rank_of(event_type: str) -> int:
    for rank, entry in enumerate(PRECEDENCE):
        names = entry if isinstance(entry, tuple) else (entry,)
        for name in names:
            if name == event_type or (name.endswith(".*") and event_type.startswith(name[:-1])):
                return rank
    return len(PRECEDENCE)  # anything else: after the listed types, before nothing


@dataclass(frozen=True)
class ArchivedEvent:
    """An archived event as the ledger reads it."""

    id: str
    type: str
    created: int  # Stripe's `created`, epoch seconds
    api_version: str | None
    payload: Obj

    @property
    def object(self) -> Obj:
        return self.payload.get("data", {}).get("object") or {}

    @property
    def previous_attributes(self) -> Obj | None:
        previous = self.payload.get("data", {}).get("previous_attributes")
        return previous if isinstance(previous, dict) else None

    @property
    def object_id(self) -> str | None:
        object_id = self.object.get("id")
        return object_id if isinstance(object_id, str) else None

    def tiebreak(self) -> tuple[int, str]:
        return _rank_of(self.type), self.id


def matches(current: Any, previous: Any) -> bool:
    """Whether a state agrees with previous_attributes, which name only what changed, also inside objects."""
    if isinstance(previous, dict):
        return isinstance(current, dict) and all(matches(current.get(key), value) for key, value in previous.items())
    if isinstance(previous, list):
        return (isinstance(current, list) and len(current) == len(previous)
                and all(matches(c, p) for c, p in zip(current, previous, strict=True)))
    return current == previous


def _followers(event: ArchivedEvent, group: list[ArchivedEvent]) -> int:
    """How many of the object's other events would chain from this one's state.

    Several events can match the current state when each names only what it changed (a renewal names the
    period, a payment failure the status): the one that keeps the chain going comes first.
    """
    return sum(1 for other in group if other is not event and other.previous_attributes
               and matches(event.object, other.previous_attributes))


def order_events(events: Iterable[ArchivedEvent]) -> list[ArchivedEvent]:
    """Return the events in the §4.4 order."""
    state: dict[str, Obj] = {}
    ordered: list[ArchivedEvent] = []
    for _, group in groupby(sorted(events, key=lambda e: e.created), key=lambda e: e.created):
        for event in _order_second(list(group), state):
            ordered.append(event)
            if event.object_id:
                state[event.object_id] = event.object
    return ordered


def _order_second(events: Sequence[ArchivedEvent], before: dict[str, Obj]) -> list[ArchivedEvent]:
    """Order one second's events: each object's own chain first, then type precedence across objects."""
    if len(events) == 1:
        return list(events)
    state = dict(before)
    remaining = sorted(events, key=ArchivedEvent.tiebreak)
    ordered = []
    while remaining:
        by_object: dict[str, list[ArchivedEvent]] = {}
        for event in remaining:
            by_object.setdefault(event.object_id or event.id, []).append(event)
        heads = []
        for object_id, group in by_object.items():
            current = state.get(object_id)
            chaining = [e for e in group if current is not None and e.previous_attributes
                        and matches(current, e.previous_attributes)]
            heads.append(min(chaining, key=lambda e: (-_followers(e, group), e.tiebreak())) if chaining else group[0])
        chosen = min(heads, key=ArchivedEvent.tiebreak)
        remaining.remove(chosen)
        ordered.append(chosen)
        if chosen.object_id:
            state[chosen.object_id] = chosen.object
    return ordered
