"""Random subscription lifecycles for `flask billing prove`: planned from a seed, played through the SDK.

`plan_lifecycles` decides every tenant's story up front (pure: no Stripe, no database), wider than the
demo's mix: coupons of every duration (percent and amount off), tax-inclusive and tax-exclusive prices,
monthly, quarterly and yearly plans, quantities, upgrades, scheduled downgrades that take effect or are
released or cancelled, cancellations at period end with and without a change of mind, failed payments that
recover or end in dunning, refunds, partial credit notes, deleted customers and deleted tenants.
`LifecycleDriver` plays one tenant's actions against Stripe (the demo's `TenantDriver`, extended).
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from backoffice.demo.generator import DAY, MONTH, Action, TenantDriver, TenantPlan
from backoffice.demo.people import TenantRecords
from backoffice.demo.stripe_demo import StripeDemo

# Customer countries (VAT from the sandbox's rates; US customers pay none).
COUNTRIES = ("DK", "SE", "NO", "FI", "DE", "NL", "FR", "GB", "US")
# Billing intervals as Stripe's `recurring`, and what a plan costs per interval relative to a month.
INTERVALS: dict[str, tuple[dict[str, Any], int]] = {
    "month": ({"interval": "month"}, 1),
    "quarter": ({"interval": "month", "interval_count": 3}, 3),
    "year": ({"interval": "year"}, 10),  # two months free
}
TAX_BEHAVIORS = ("exclusive", "inclusive")
# (kind, duration): amount_off forever is not offered, Stripe (basil) refuses it on subscriptions.
COUPONS = (("percent", "forever"), ("percent", "once"), ("percent", "repeating"), ("amount", "once"),
           ("amount", "repeating"))


@dataclass(frozen=True)
class ProveMix:
    """The shares the lifecycles are drawn with."""

    free: float = 0.06
    premium: float = 0.4
    quarterly: float = 0.12
    yearly: float = 0.18
    inclusive: float = 0.35
    several_seats: float = 0.25
    coupon: float = 0.4
    quantity_change: float = 0.2
    upgrade: float = 0.25
    downgrade: float = 0.4
    failed_payment: float = 0.14
    recovered: float = 0.55
    churn: float = 0.16
    reactivated: float = 0.4
    win_back: float = 0.3
    cancel_now: float = 0.04
    refund: float = 0.1
    credit_note: float = 0.1
    customer_deleted: float = 0.03
    tenant_deleted: float = 0.03


@dataclass(frozen=True)
class PriceBook:
    """Price ids by (plan, interval, tax behaviour)."""

    prices: dict[tuple[str, str, str], str]

    def price(self, plan: str, interval: str, tax_behavior: str) -> str:
        return self.prices[(plan, interval, tax_behavior)]


def ensure_price_book(demo: StripeDemo, currency: str | None = None) -> PriceBook:
    """Create the prices the lifecycles use beside the demo catalog's (which are monthly and yearly, exclusive),
    in `currency` (the platform's when none is named)."""
    catalog = demo.catalog_for(currency) if currency else demo.catalog
    client, currency = demo.client, catalog.currency
    prices: dict[tuple[str, str, str], str] = {}
    for plan, amounts in demo.amounts_for(currency).items():
        product = client.v1.prices.retrieve(catalog.price(plan)).product
        for interval, (recurring, months) in INTERVALS.items():
            for behavior in TAX_BEHAVIORS:
                if behavior == "exclusive" and interval in catalog.prices[plan]:
                    prices[(plan, interval, behavior)] = catalog.price(plan, interval)
                    continue
                amount = amounts["year"] if interval == "year" else amounts["month"] * months
                prices[(plan, interval, behavior)] = client.v1.prices.create(params={
                    "product": product, "unit_amount": amount, "currency": currency, "tax_behavior": behavior,
                    "recurring": recurring, "metadata": {"plan": plan}}).id
    return PriceBook(prices)


def plan_lifecycles(seed: int, count: int, months: int, start: int, mix: ProveMix | None = None) -> list[TenantPlan]:
    """Decide every tenant and its Stripe lifecycle from the seed (no Stripe, no database)."""
    mix = mix or ProveMix()
    rng = random.Random(f"prove:{seed}")
    span = months * MONTH
    plans = []
    for index in range(count):
        signup = rng.randint(0, int(span * 0.8))
        country = rng.choice(COUNTRIES)
        tenant = {"id": f"ten_prove{seed}x{index:06d}", "name": f"Prove {index:05d} ({country})",
                  "created_at": datetime.fromtimestamp(start + signup, UTC), "modified_at": None, "deleted_at": None,
                  "state": "active", "suspension_reason": None, "suspended_at": None, "plan": None,
                  "country": country, "logo": None}
        plans.append(TenantPlan(TenantRecords(tenant), _story(rng, mix, signup, span)))
    return plans


def _story(rng: random.Random, mix: ProveMix, signup: int, span: int) -> list[Action]:
    if rng.random() < mix.free:
        return []
    plan = "premium" if rng.random() < mix.premium else "standard"
    draw = rng.random()
    interval = "year" if draw < mix.yearly else "quarter" if draw < mix.yearly + mix.quarterly else "month"
    coupon = rng.choice(COUPONS) if rng.random() < mix.coupon else None
    start = signup + rng.randint(0, 3 * DAY)
    actions = [Action(start, "subscribe", {
        "plan": plan, "interval": interval, "tax_behavior": "inclusive" if rng.random() < mix.inclusive else "exclusive",
        "quantity": rng.randint(2, 5) if rng.random() < mix.several_seats else 1,
        "coupon": _coupon(rng, coupon) if coupon else None})]

    def some_time(after: int, within: int = span) -> int | None:
        latest = min(span, after + within)
        return rng.randint(after + DAY, latest) if latest > after + DAY else None

    if rng.random() < mix.quantity_change and (at := some_time(start)):
        actions.append(Action(at, "change_quantity", {"quantity": rng.randint(1, 6)}))
    if plan == "standard" and rng.random() < mix.upgrade and (at := some_time(start)):
        actions.append(Action(at, "upgrade"))
    elif plan == "premium" and rng.random() < mix.downgrade and (at := some_time(start)):
        actions.append(Action(at, "schedule_downgrade"))
        outcome = rng.choice(("takes_effect", "takes_effect", "release_schedule", "cancel_schedule"))
        if outcome != "takes_effect":
            actions.append(Action(at + rng.randint(1, 10) * DAY, outcome))
    if rng.random() < mix.refund and (at := some_time(start, 60 * DAY)):
        actions.append(Action(at, "refund", {"partial": rng.random() < 0.5}))
    if rng.random() < mix.credit_note and (at := some_time(start, 60 * DAY)):
        actions.append(Action(at, "credit_note", {"refund": rng.random() < 0.5}))
    if interval == "month" and rng.random() < mix.failed_payment and (at := some_time(start)):
        actions.append(Action(at, "fail_card"))
        if rng.random() < mix.recovered:
            actions.append(Action(at + MONTH + rng.randint(1, 5) * DAY, "fix_card_and_pay"))
    elif rng.random() < mix.churn and (at := some_time(start)):
        actions.append(Action(at, "cancel_at_period_end"))
        if rng.random() < mix.reactivated:
            actions.append(Action(at + rng.randint(1, 5) * DAY, "reactivate"))
        elif rng.random() < mix.win_back:
            actions.append(Action(at + rng.randint(2, 4) * MONTH, "win_back", {"plan": "standard"}))
    elif rng.random() < mix.cancel_now and (at := some_time(start)):
        actions.append(Action(at, "cancel_now"))
    if rng.random() < mix.customer_deleted and (at := some_time(start)):
        actions.append(Action(at, "delete_customer"))
    elif rng.random() < mix.tenant_deleted and (at := some_time(start)):
        actions.append(Action(at, "delete_tenant"))
    return sorted((a for a in actions if a.at < span), key=lambda a: a.at)


def _coupon(rng: random.Random, coupon: tuple[str, str]) -> dict[str, Any]:
    kind, duration = coupon
    params: dict[str, Any] = {"duration": duration}
    if duration == "repeating":
        params["duration_in_months"] = rng.randint(1, 4)
    if kind == "percent":
        params["percent_off"] = str(rng.choice((10, 15, 20, 25, 50)))
    else:
        params["amount_off"] = rng.choice((500, 1000, 2500))
    return params


class LifecycleDriver(TenantDriver):
    """Plays one lifecycle; remembers every subscription it made (a win-back makes a second)."""

    def __init__(self, demo: StripeDemo, plan: TenantPlan, rng: random.Random, books: Callable[[str], PriceBook],
                 on_tenant_deleted: Callable[[str, int], None] | None = None):
        super().__init__(demo, plan, rng)
        # The prices in the customer's billing currency (TenantDriver chose it by country).
        self.book = books(self.catalog.currency)
        self.on_tenant_deleted = on_tenant_deleted
        self.subscriptions: list[str] = []
        self.interval, self.tax_behavior = "month", "exclusive"

    def subscribe(self, plan: str, interval: str = "month", coupon: str | None = None, *,
                  tax_behavior: str = "exclusive", quantity: int = 1) -> str:
        params: dict[str, Any] = {"customer": self.run.customer_id, "items": [
            {"price": self.book.price(plan, interval, tax_behavior), "quantity": quantity}]}
        if coupon:
            params["discounts"] = [{"coupon": coupon}]
        subscription = self.step(lambda: self.client.v1.subscriptions.create(params=params))
        self.run.objects["subscription"] = subscription.id
        self.subscriptions.append(subscription.id)
        return subscription.id

    def do_subscribe(self, plan: str, interval: str, tax_behavior: str, quantity: int,  # type: ignore[override]
                     coupon: dict[str, Any] | None) -> None:
        self.customer(country=self.country)
        self.interval, self.tax_behavior = interval, tax_behavior
        coupon_id = None
        if coupon:
            if "amount_off" in coupon:
                coupon = {**coupon, "currency": self.catalog.currency}
            coupon_id = self.client.v1.coupons.create(params=coupon).id
        self.subscribe(plan, interval, coupon_id, tax_behavior=tax_behavior, quantity=quantity)

    def _item(self, current: Any) -> Any:
        return current["items"].data[0]

    def do_change_quantity(self, quantity: int) -> None:
        if (current := self.live()) and not current.schedule and self._item(current).quantity != quantity:
            self.step(lambda: self.client.v1.subscriptions.update(current.id, params={
                "items": [{"id": self._item(current).id, "quantity": quantity}]}))

    def do_upgrade(self) -> None:
        if (current := self.live()) and not current.schedule:
            item = self._item(current)
            self.step(lambda: self.client.v1.subscriptions.update(current.id, params={
                "items": [{"id": item.id, "price": self.book.price("premium", self.interval, self.tax_behavior)}],
                "proration_behavior": "always_invoice"}))

    def do_schedule_downgrade(self) -> None:  # type: ignore[override]
        current = self.live()
        if not current or current.schedule or current.cancel_at_period_end:
            return
        schedule = self.step(lambda: self.client.v1.subscription_schedules.create(
            params={"from_subscription": current.id}))
        phase, quantity = schedule.phases[0], self._item(current).quantity
        self.step(lambda: self.client.v1.subscription_schedules.update(schedule.id, params={
            "end_behavior": "release",
            "phases": [
                {"items": [{"price": phase["items"][0].price, "quantity": quantity}], "start_date": phase.start_date,
                 "end_date": phase.end_date},
                {"items": [{"price": self.book.price("standard", self.interval, self.tax_behavior),
                            "quantity": quantity}], "iterations": 1},
            ]}))
        self.run.objects["schedule"] = schedule.id

    def _running_schedule(self) -> str | None:
        schedule_id = self.run.objects.get("schedule")
        if schedule_id and self.client.v1.subscription_schedules.retrieve(schedule_id).status in {"active",
                                                                                                  "not_started"}:
            return schedule_id
        return None

    def do_release_schedule(self) -> None:
        if schedule_id := self._running_schedule():
            self.step(lambda: self.client.v1.subscription_schedules.release(schedule_id))

    def do_cancel_schedule(self) -> None:
        if schedule_id := self._running_schedule():
            self.step(lambda: self.client.v1.subscription_schedules.cancel(schedule_id))

    def do_win_back(self, plan: str) -> None:
        if self.live() is None and self.run.customer_id and not self.customer_deleted:
            self.set_card("visa")
            self.subscribe(plan, self.interval, tax_behavior=self.tax_behavior)

    def do_delete_tenant(self) -> None:
        """The SaaS deletes the account: it ends the subscription now and soft-deletes the tenant."""
        self.do_cancel_now()
        if self.on_tenant_deleted:
            self.on_tenant_deleted(self.run.tenant_id, self.demo.now())


def play(driver: LifecycleDriver, action: Action) -> bool:
    """Do one action; False when Stripe refused it (the lifecycle goes on without it)."""
    try:
        driver.do(action)
    except stripe.StripeError:
        return False
    return True
