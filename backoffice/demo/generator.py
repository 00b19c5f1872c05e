"""The demo dataset: N tenants over M months, their Stripe lifecycles and the SaaS's own records.

Two steps. `plan_tenants` decides everything from the seed (pure, so the mix can be checked without
Stripe). `DatasetBuilder.run` then plays the plans in time order against Stripe (the sandbox), moving
its clock so that every event carries a realistic `created`, and returns the product-side records.
"""
from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe

from backoffice.demo.people import PeopleGenerator, TenantRecords
from backoffice.demo.scenarios import Scenario
from backoffice.demo.stripe_demo import StripeDemo

log = logging.getLogger(__name__)

DAY = 86400
MONTH = 30 * DAY
# Actions within one step share the clock: each clock move is an API call, so a build moves it at most once
# an hour of history rather than once per action.
CLOCK_STEP = 3600
# Customers in these countries are billed in their own currency (the rest in the platform's), so that the
# reports' conversion and the FX movement are exercised: about three in five of the demo's customers.
BILLING_CURRENCIES = {"US": "USD", "GB": "GBP", "SE": "SEK", "DK": "DKK"}


@dataclass(frozen=True)
class DemoMix:
    """The shares the plans are drawn with (each of tenants, or of the tenants it applies to)."""

    free: float = 0.22
    premium: float = 0.35
    yearly: float = 0.12
    coupon: float = 0.06
    upgrade: float = 0.18
    downgrade: float = 0.12
    failed_payment: float = 0.08
    failed_payment_suspended: float = 0.35
    churn: float = 0.16
    churn_reactivated: float = 0.2
    win_back: float = 0.3
    immediate_cancel: float = 0.02
    refund: float = 0.04
    credit_note: float = 0.03
    customer_deleted: float = 0.01
    tenant_deleted: float = 0.02
    missed_webhooks: float = 0.03


@dataclass(frozen=True)
class Action:
    """One thing a tenant does at an instant (seconds after the dataset's start)."""

    at: int
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class TenantPlan:
    """Everything one tenant will do, decided up front."""

    records: TenantRecords
    actions: list[Action]
    missed_webhooks: bool = False

    @property
    def tenant_id(self) -> str:
        return self.records.tenant["id"]


def plan_tenants(seed: int, tenants: int, months: int, start: int, mix: DemoMix | None = None) -> list[TenantPlan]:
    """Decide every tenant's records and Stripe lifecycle from the seed (no Stripe, no database)."""
    mix = mix or DemoMix()
    rng = random.Random(seed)
    span = months * MONTH
    end = start + span
    people = PeopleGenerator(seed + 1, _datetime(end))
    plans = []
    for _ in range(tenants):
        # Growth: more sign-ups later in the window than early on.
        signup = int(span * rng.random() ** (1 / 1.6))
        deleted = signup + rng.randint(DAY, max(DAY, span - signup)) if rng.random() < mix.tenant_deleted else None
        records = people.tenant(_datetime(start + signup),
                                deleted_at=_datetime(start + deleted) if deleted and deleted < span else None)
        actions = _lifecycle(rng, mix, signup, span, deleted)
        plans.append(TenantPlan(records, actions, missed_webhooks=bool(actions) and rng.random() < mix.missed_webhooks))
    return plans


def _lifecycle(rng: random.Random, mix: DemoMix, signup: int, span: int, deleted: int | None) -> list[Action]:
    """Draw one tenant's subscription story."""
    if rng.random() < mix.free:
        return []
    plan = "premium" if rng.random() < mix.premium else "standard"
    interval = "year" if rng.random() < mix.yearly else "month"
    start = signup + rng.randint(0, 14 * DAY)
    if start >= min(span, deleted or span):
        return []
    actions = [Action(start, "subscribe", {"plan": plan, "interval": interval,
                                           "coupon": rng.random() < mix.coupon})]
    horizon = min(span, deleted or span)

    def some_time(after: int, within: int = span) -> int | None:
        latest = min(horizon, after + within)
        return rng.randint(after + DAY, latest) if latest > after + DAY else None

    if plan == "standard" and rng.random() < mix.upgrade and (at := some_time(start)):
        actions.append(Action(at, "change_plan", {"plan": "premium"}))
    elif plan == "premium" and interval == "month" and rng.random() < mix.downgrade and (at := some_time(start)):
        actions.append(Action(at, "schedule_downgrade", {"plan": "standard"}))
    if rng.random() < mix.refund and (at := some_time(start, 20 * DAY)):
        actions.append(Action(at, "refund", {"partial": rng.random() < 0.5}))
    if rng.random() < mix.credit_note and (at := some_time(start, 20 * DAY)):
        actions.append(Action(at, "credit_note", {"refund": rng.random() < 0.5}))
    if interval == "month" and rng.random() < mix.failed_payment and (at := some_time(start)):
        actions.append(Action(at, "fail_card"))
        if rng.random() >= mix.failed_payment_suspended:
            actions.append(Action(at + MONTH + rng.randint(1, 5) * DAY, "fix_card_and_pay"))
    elif rng.random() < mix.churn and (at := some_time(start)):
        actions.append(Action(at, "cancel_at_period_end"))
        if rng.random() < mix.churn_reactivated:
            actions.append(Action(at + rng.randint(1, 5) * DAY, "reactivate"))
        elif rng.random() < mix.win_back:
            actions.append(Action(at + rng.randint(2, 5) * MONTH, "win_back", {"plan": "standard"}))
    elif rng.random() < mix.immediate_cancel and (at := some_time(start)):
        actions.append(Action(at, "cancel_now"))
    if rng.random() < mix.customer_deleted and (at := some_time(start)):
        actions.append(Action(at, "delete_customer"))
    if deleted is not None and deleted < span:
        actions.append(Action(deleted, "cancel_now"))
    return sorted((a for a in actions if a.at < span), key=lambda a: a.at)


def _datetime(instant: int) -> datetime:
    return datetime.fromtimestamp(instant, UTC)


class TenantDriver(Scenario):
    """Plays one tenant's actions; an action that no longer applies (already ended) is skipped."""

    def __init__(self, demo: StripeDemo, plan: TenantPlan, rng: random.Random,
                 on_customer: Callable[[str], None] | None = None):
        country = plan.records.tenant["country"]
        super().__init__(demo, "generated", plan.tenant_id, track_events=False,
                         currency=BILLING_CURRENCIES.get(country))
        self.country = country
        self.rng = rng
        self.customer_deleted = False
        self.on_customer = on_customer

    def do(self, action: Action) -> None:
        getattr(self, f"do_{action.name}")(**action.args)

    def subscription(self) -> Any | None:
        subscription_id = self.run.objects.get("subscription")
        return self.client.v1.subscriptions.retrieve(subscription_id) if subscription_id else None

    def live(self) -> Any | None:
        subscription = self.subscription()
        return subscription if subscription and subscription.status not in {"canceled", "incomplete_expired"} else None

    def do_subscribe(self, plan: str, interval: str, coupon: bool) -> None:
        self.customer(country=self.country)
        if self.on_customer:
            self.on_customer(self.run.customer_id)
        coupon_id = None
        if coupon:
            coupon_id = self.client.v1.coupons.create(params={"percent_off": "15", "duration": "forever"}).id
        self.subscribe(plan, interval, coupon=coupon_id)

    def do_change_plan(self, plan: str) -> None:
        if (current := self.live()) and not current.schedule:
            self.change_plan(plan, interval=current["items"].data[0].price.recurring.interval)

    def do_schedule_downgrade(self, plan: str) -> None:
        if (current := self.live()) and not current.schedule and not current.cancel_at_period_end:
            self.schedule_downgrade(plan)

    def do_cancel_at_period_end(self) -> None:
        if (current := self.live()) and not current.schedule:
            self.set_cancel_at_period_end(True, reason=self.rng.choice(("too_expensive", "unused", "switched_service")))

    def do_reactivate(self) -> None:
        if (current := self.live()) and current.cancel_at_period_end:
            self.set_cancel_at_period_end(False)

    def do_win_back(self, plan: str) -> None:
        if self.live() is None and self.run.customer_id and not self.customer_deleted:
            self.set_card("visa")
            self.subscribe(plan)

    def do_cancel_now(self) -> None:
        if current := self.live():
            self.step(lambda: self.client.v1.subscriptions.cancel(current.id))

    def do_fail_card(self) -> None:
        if self.live():
            self.set_card("chargeCustomerFail")

    def do_fix_card_and_pay(self) -> None:
        if not self.live():
            return
        self.set_card("visa")
        for invoice in self.client.v1.invoices.list(params={"customer": self.run.customer_id, "status": "open"}).data:
            self.step(lambda invoice_id=invoice.id: self.client.v1.invoices.pay(invoice_id))

    def do_refund(self, partial: bool) -> None:
        charges = self.client.v1.charges.list(params={"customer": self.run.customer_id, "limit": 1}).data
        if not charges or charges[0].status != "succeeded" or charges[0].refunded:
            return
        params: dict[str, Any] = {"charge": charges[0].id, "reason": "requested_by_customer"}
        if partial:
            params["amount"] = max(1, (charges[0].amount - charges[0].amount_refunded) // 3)
        self.step(lambda: self.client.v1.refunds.create(params=params))

    def do_credit_note(self, refund: bool) -> None:
        paid = self.client.v1.invoices.list(params={"customer": self.run.customer_id, "status": "paid", "limit": 1})
        if not paid.data or paid.data[0].total <= 0:
            return
        amount = paid.data[0].total // 4
        key = "refund_amount" if refund else "credit_amount"
        params = {"invoice": paid.data[0].id, "amount": amount, key: amount, "reason": "product_unsatisfactory"}
        self.step(lambda: self.client.v1.credit_notes.create(params=params))

    def do_delete_customer(self) -> None:
        if self.run.customer_id and not self.customer_deleted:
            self.step(lambda: self.client.v1.customers.delete(self.run.customer_id))
            self.customer_deleted = True


@dataclass
class BuildReport:
    """What a build made: counts for the operator and the plans for anyone who wants details."""

    plans: list[TenantPlan]
    customers: dict[str, str]
    skipped: int = 0
    lost_webhooks: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "tenants": len(self.plans),
            "paying": sum(1 for p in self.plans if p.actions),
            "users": sum(len(p.records.users) for p in self.plans),
            "logins": sum(len(p.records.logins) for p in self.plans),
            "sessions": sum(len(p.records.sessions) for p in self.plans),
        }


class DatasetBuilder:
    """Play the tenants' plans against Stripe in time order."""

    def __init__(self, demo: StripeDemo, plans: list[TenantPlan], start: int, seed: int,
                 webhook_endpoint: str | None = None):
        self.demo = demo
        self.plans = plans
        self.start = start
        self.rng = random.Random(seed + 2)
        # With an endpoint, the customers of plans marked `missed_webhooks` never reach it.
        self.webhook_endpoint = webhook_endpoint

    def agenda(self) -> Iterator[tuple[int, int, Action]]:
        """Yield (instant, tenant index, action) in time order."""
        heap = [(self.start + a.at, index, order, a) for index, plan in enumerate(self.plans)
                for order, a in enumerate(plan.actions)]
        heapq.heapify(heap)
        while heap:
            instant, index, _order, action = heapq.heappop(heap)
            yield instant, index, action

    def run(self, progress: Callable[[int, int], None] | None = None) -> BuildReport:
        """Execute every action (skipping ones Stripe refuses, which the log says) and return the report."""
        drivers: dict[int, TenantDriver] = {}
        total = sum(len(plan.actions) for plan in self.plans)
        report = BuildReport(self.plans, {})
        for done, (instant, index, action) in enumerate(self.agenda(), start=1):
            self.demo.advance_to(instant - instant % CLOCK_STEP)
            driver = drivers.get(index)
            if driver is None:
                lose = self.plans[index].missed_webhooks
                driver = drivers[index] = TenantDriver(
                    self.demo, self.plans[index], self.rng,
                    on_customer=(lambda customer_id: self._lose_webhooks(report, customer_id)) if lose else None)
            try:
                driver.do(action)
            except stripe.StripeError as error:
                report.skipped += 1
                log.info("demo: %s for %s refused by Stripe: %s", action.name, driver.run.tenant_id, error)
            if driver.run.customer_id:
                report.customers[driver.run.tenant_id] = driver.run.customer_id
            if progress:
                progress(done, total)
        return report

    def _lose_webhooks(self, report: BuildReport, customer_id: str) -> None:
        """From now on, none of this customer's events reaches the webhook endpoint."""
        report.lost_webhooks.append(customer_id)
        if self.webhook_endpoint:
            self.demo.lose_webhooks_of(self.webhook_endpoint, report.lost_webhooks)
