"""The billing clock: moving time forward runs whatever falls due on the way, in time order.

What falls due is read from the objects themselves, so nothing is scheduled on the side: a schedule's phase
end, a subscription's period end (renewal, or its end when set to cancel), an invoice's
`next_payment_attempt` (a retry), an incomplete subscription's expiry (`DUES`). Each runs at its own instant, with the
clock moved there first, in its own transaction, and belongs to no API request (its events' `request.id` is
null), like Stripe's own background work.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backoffice.stripe_sandbox.resources import schedules, subscriptions
from backoffice.stripe_sandbox.resources.invoices import collect, subscription_of
from backoffice.stripe_sandbox.sandbox import NO_REQUEST, Sandbox

Obj = dict[str, Any]


def retry_due_at(sb: Sandbox, invoice: Obj) -> int | None:
    """When an open invoice's payment is retried (never once its subscription has ended)."""
    if invoice["status"] != "open" or invoice["next_payment_attempt"] is None:
        return None
    subscription = subscription_of(sb, invoice)
    if subscription is not None and subscription["status"] in subscriptions.ENDED:
        return None
    return invoice["next_payment_attempt"]


def retry_payment(sb: Sandbox, invoice: Obj) -> None:
    """Charge a declined invoice again. Events: the payment's, then the subscription's status change, if any."""
    collect(sb, invoice)
    subscriptions.follow_invoice(sb, invoice)


@dataclass(frozen=True)
class Due:
    """A kind of work the clock does: which objects it concerns, when one falls due, and what to do then."""

    object_type: str
    due_at: Callable[[Sandbox, Obj], int | None]
    run: Callable[[Sandbox, Obj], None]


# In the order they run when due at the same instant: a phase that starts at a period end changes the prices
# before the renewal bills them.
DUES = (
    Due("subscription_schedule", schedules.phase_due_at, schedules.advance_phase),
    Due("subscription", subscriptions.period_end_due_at, subscriptions.end_period),
    Due("invoice", retry_due_at, retry_payment),
    Due("subscription", subscriptions.expiry_due_at, subscriptions.expire_incomplete),
)


def advance_to(sb: Sandbox, target: int) -> None:
    """Move the clock to `target`, running every renewal, retry and phase change that falls due on the way."""
    token = sb.begin_request(NO_REQUEST)
    try:
        if sb.agenda is None:
            sb.agenda = Agenda(sb)
        sb.agenda.work_through(target)
        with sb.store.lock:
            sb.clock.move_to(target)
    finally:
        sb.end_request(token)


class Agenda:
    """The clock's due work, earliest first, then in `DUES` order, then oldest object first.

    Kept for the sandbox's life and fed by the store's change list, so a clock move costs what the work
    due by then costs, not the number of objects (a year of hourly moves over 10,000 customers would
    otherwise read every invoice thousands of times). Entries go stale when their object changes; each is
    checked again when it comes up.
    """

    def __init__(self, sb: Sandbox):
        self.sb = sb
        self.heap: list[tuple[int, int, int, str]] = []  # (instant, index in DUES, age rank, object id)
        self.queued: set[tuple[int, int, str]] = set()
        self.rank: dict[str, int] = {}
        self.types = {due.object_type for due in DUES}

    def take_changes(self) -> None:
        """Queue the work of every object added or changed since the last look."""
        with self.sb.store.lock:
            for object_id in self.sb.store.take_changed():
                obj = self.sb.store.find(object_id)
                if obj is not None and obj.get("object") in self.types:
                    self.consider(obj)

    def consider(self, obj: Obj) -> None:
        rank = self.rank.setdefault(obj["id"], len(self.rank))
        for index, due in enumerate(DUES):
            if due.object_type != obj.get("object"):
                continue
            instant = due.due_at(self.sb, obj)
            if instant is not None and (instant, index, obj["id"]) not in self.queued:
                self.queued.add((instant, index, obj["id"]))
                heapq.heappush(self.heap, (instant, index, rank, obj["id"]))

    def work_through(self, target: int) -> None:
        """Run the work due by `target` in order, each piece in its own transaction at its own instant."""
        self.take_changes()
        while self.heap and self.heap[0][0] <= target:
            instant, index, _, object_id = heapq.heappop(self.heap)
            self.queued.discard((instant, index, object_id))
            due = DUES[index]
            with self.sb.transaction():
                obj = self.sb.store.find(object_id)
                # Earlier work may have settled it (a cancellation ends a renewal) or moved it.
                if obj is None or due.due_at(self.sb, obj) != instant:
                    continue
                self.sb.clock.move_to(max(instant, self.sb.now()))
                due.run(self.sb, obj)
            self.take_changes()


def end_subscriptions_of_deleted_customer(sb: Sandbox, customer: dict[str, Any]) -> None:
    """Cancel the customer's subscriptions, as Stripe does when a customer is deleted.

    Events: customer.subscription.deleted for each (after subscription_schedule.canceled for a scheduled one),
    all before the caller's customer.deleted.
    """
    for sub in sb.store.all("subscription"):
        if sub["customer"] == customer["id"] and sub["status"] not in subscriptions.ENDED:
            subscriptions.cancel_now(sb, sub, "cancellation_requested")
