"""The total order of a customer's events (DESIGN §4.4): never arrival order, which Stripe does not keep.

Events are ordered by Stripe's `created`. Within one second, state chaining decides first: starting from
each object's state before that second, the next event is one whose `previous_attributes` match the current
state of its object. Where chaining does not decide, a fixed type precedence, then the event id.
"""
from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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


@functools.lru_cache(maxsize=512)
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
    # Read from the payload once: ordering and the rules ask for them hundreds of thousands of times in a replay.
    object: Obj = field(init=False, repr=False, compare=False)
    previous_attributes: Obj | None = field(init=False, repr=False, compare=False)
    object_id: str | None = field(init=False, repr=False, compare=False)
    tiebreak_key: tuple[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        data = self.payload.get("data", {})
        obj = data.get("object") or {}
        previous = data.get("previous_attributes")
        object_id = obj.get("id")
        object.__setattr__(self, "object", obj)
        object.__setattr__(self, "previous_attributes", previous if isinstance(previous, dict) else None)
        object.__setattr__(self, "object_id", object_id if isinstance(object_id, str) else None)
        object.__setattr__(self, "tiebreak_key", (_rank_of(self.type), self.id))

    def tiebreak(self) -> tuple[int, str]:
        return self.tiebreak_key


def matches(current: Any, previous: Any) -> bool:
    """Whether a state agrees with previous_attributes, which name only what changed, also inside objects."""
    if isinstance(previous, dict):
        return isinstance(current, dict) and all(matches(current.get(key), value) for key, value in previous.items())
    if isinstance(previous, list):
        return (isinstance(current, list) and len(current) == len(previous)
                and all(matches(c, p) for c, p in zip(current, previous, strict=True)))
    return current == previous


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
    by_object: dict[str, list[ArchivedEvent]] = {}
    for event in sorted(events, key=ArchivedEvent.tiebreak):
        by_object.setdefault(event.object_id or event.id, []).append(event)
    # An object's state changes only with its own events, so each object's sequence is decided alone; the
    # objects' next events then interleave by precedence and id.
    sequences = [_object_chain(group, before.get(object_id)) for object_id, group in by_object.items()]
    if len(sequences) == 1:
        return sequences[0]
    # Repeatedly the least head by precedence and id, ties to the earlier object: what heapq.merge does.
    return list(heapq.merge(*sequences, key=ArchivedEvent.tiebreak))


# Events of one object in one second beyond which the step-by-step preference alone decides (the search below
# visits up to 2^n states; Stripe emits a handful per object and second).
CHAIN_SEARCH_LIMIT = 8


def _object_chain(group: list[ArchivedEvent], current: Obj | None) -> list[ArchivedEvent]:
    """Order one object's events of one second (sorted by precedence and id) along its state chain.

    Each step prefers an event whose previous_attributes match the current state, among those the one most
    other events would chain from (a renewal names the period, a payment failure only the status: the one
    that keeps the chain going comes first), then precedence and id; else the first by precedence and id.
    A preferred step is taken only when the rest can still chain as well as after any other step, so a step
    that matches now never strands later events (a value changed and changed back within the second).
    """
    count = len(group)
    if count == 1 or not any(event.previous_attributes for event in group):
        # Nothing can chain (an invoice's events name no previous attributes): precedence and id alone decide,
        # which is the order the group comes in. Most groups are such; the search below would only confirm it.
        return list(group)
    chain = _Chain(group, current)
    if not any(chain.chainable):
        return list(group)
    search = count <= CHAIN_SEARCH_LIMIT
    ordered: list[ArchivedEvent] = []
    remaining, last = frozenset(range(count)), count
    while remaining:
        candidates = chain.preference(remaining, last)
        chosen = candidates[0]
        if search:
            target = chain.most_chained(remaining, last)
            chosen = next(index for index in candidates
                          if chain.chains[last][index] + chain.most_chained(remaining - {index}, index) == target)
        ordered.append(group[chosen])
        remaining, last = remaining - {chosen}, chosen
    return ordered


class _Chain:
    """Which of one object's events of one second can follow which, and the search over them.

    A class rather than nested functions: a recursive closure is a reference cycle, which kept every event
    it had seen (payloads and all) alive until the cycle collector came by.
    """

    def __init__(self, group: list[ArchivedEvent], current: Obj | None):
        count = len(group)
        self.group = group
        # chains[last][i]: event i's previous_attributes match the state after event `last` (count: before the second).
        states = [event.object for event in group] + [current]
        self.chains = [[index != last and states[last] is not None and bool(group[index].previous_attributes)
                        and matches(states[last], group[index].previous_attributes) for index in range(count)]
                       for last in range(count + 1)]
        self.chainable = [any(self.chains[last][index] for last in range(count + 1)) for index in range(count)]
        self.best: dict[tuple[frozenset[int], int], int] = {}

    def preference(self, remaining: frozenset[int], last: int) -> list[int]:
        chains, group = self.chains, self.group

        def key(index: int) -> tuple[int, int, tuple[int, str]]:
            if chains[last][index]:
                followers = sum(1 for other in remaining if chains[index][other])
                return 0, -followers, group[index].tiebreak()
            return 1, 0, group[index].tiebreak()
        return sorted(remaining, key=key)

    def most_chained(self, remaining: frozenset[int], last: int) -> int:
        """The most of the remaining events that can chain, starting from the state after `last`."""
        if not remaining:
            return 0
        if (remaining, last) not in self.best:
            ceiling = sum(1 for index in remaining if self.chainable[index])
            value = 0
            for index in self.preference(remaining, last):
                value = max(value, self.chains[last][index] + self.most_chained(remaining - {index}, index))
                if value == ceiling:
                    break
            self.best[(remaining, last)] = value
        return self.best[(remaining, last)]
