"""The subscription lifecycles of DESIGN §7, each a named function that drives Stripe through the SDK.

Every scenario returns a `ScenarioRun`: the customer, the objects it made, and the ids of the Stripe
events it caused, in order. Scenarios are what tests, the demo generator and operators' bug reports
share: "it happens after `cancel_at_period_end_then_reactivate`" names an exact Stripe history.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backoffice.demo.stripe_demo import StripeDemo

DAY = 86400
HOUR = 3600


@dataclass
class ScenarioRun:
    """What a scenario did: its objects by role, and its events (oldest first)."""

    name: str
    tenant_id: str
    customer_id: str
    objects: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def event_types(self) -> list[str]:
        return [event["type"] for event in self.events]

    @property
    def event_ids(self) -> list[str]:
        return [event["id"] for event in self.events]


class Scenario:
    """Run steps against Stripe, collecting the events after each so none ages out of events.list."""

    def __init__(self, demo: StripeDemo, name: str, tenant_id: str, *, track_events: bool = True,
                 currency: str | None = None):
        self.demo = demo
        self.client = demo.client
        # The prices this customer is billed in: the platform currency's unless another is named.
        self.catalog = demo.catalog_for(currency) if currency else demo.catalog
        self.run = ScenarioRun(name, tenant_id, "")
        self.track_events = track_events
        self.related: set[str] = set()
        if track_events:
            demo.collect()

    def step(self, action: Callable[[], Any]) -> Any:
        result = action()
        if self.track_events:
            # Other customers' subscriptions renew while the clock moves: keep only this scenario's events.
            self.run.events.extend(event for event in self.demo.collect() if self.concerns(event))
        return result

    def concerns(self, event: dict[str, Any]) -> bool:
        """Tell whether an event is about this scenario's customer, or an object of theirs or of the scenario."""
        obj = event["data"]["object"]
        mine = {self.run.customer_id, *self.run.objects.values(), *self.related} - {""}
        if obj.get("customer") in mine or obj.get("id") in mine or obj.get("invoice") in mine:
            # Invoice payments name only their invoice, so remember the customer's invoices and charges.
            self.related.add(obj["id"])
            return True
        return False

    def advance(self, *, days: float = 0, seconds: int = 0) -> None:
        self.step(lambda: self.demo.advance(days=days, seconds=seconds))

    def past_period_end(self) -> None:
        """Move just past the subscription's current period end (renewal, expiry or phase change)."""
        subscription = self.client.v1.subscriptions.retrieve(self.run.objects["subscription"])
        period_end = subscription["items"].data[0].current_period_end
        self.step(lambda: self.demo.advance_to(period_end + HOUR))

    def customer(self, *, country: str = "DK", card: str = "visa", name: str | None = None,
                 email: str | None = None) -> str:
        """Create the tenant's Stripe customer with an address, a VAT id and a default card."""
        tenant = self.run.tenant_id
        params: dict[str, Any] = {
            "name": name or f"Customer of {tenant}",
            "email": email or f"billing+{tenant}@example.com",
            "metadata": {"tenant_id": tenant},
            "address": {"line1": "Demo Street 1", "postal_code": "1000", "city": "Demo City", "country": country},
        }
        if country in {"DK", "DE", "SE", "NL", "FI", "FR"}:
            params["tax_id_data"] = [{"type": "eu_vat", "value": f"{country}12345678"}]
        customer = self.client.v1.customers.create(params=params)
        self.run.customer_id = customer.id
        self.step(lambda: None)
        self.set_card(card)
        return customer.id

    def set_card(self, card: str) -> str:
        """Attach a test card (`visa`, `chargeCustomerFail`, …) and make it the default."""
        method = self.step(lambda: self.client.v1.payment_methods.attach(
            f"pm_card_{card}", params={"customer": self.run.customer_id}))
        self.step(lambda: self.client.v1.customers.update(
            self.run.customer_id, params={"invoice_settings": {"default_payment_method": method.id}}))
        self.run.objects["payment_method"] = method.id
        return method.id

    def subscribe(self, plan: str, interval: str = "month", coupon: str | None = None) -> str:
        params: dict[str, Any] = {"customer": self.run.customer_id,
                                  "items": [{"price": self.catalog.price(plan, interval)}]}
        if coupon:
            params["discounts"] = [{"coupon": coupon}]
        subscription = self.step(lambda: self.client.v1.subscriptions.create(params=params))
        self.run.objects["subscription"] = subscription.id
        return subscription.id

    def change_plan(self, plan: str, interval: str = "month", proration: str = "create_prorations") -> None:
        subscription = self.client.v1.subscriptions.retrieve(self.run.objects["subscription"])
        item = subscription["items"].data[0].id
        self.step(lambda: self.client.v1.subscriptions.update(subscription.id, params={
            "items": [{"id": item, "price": self.catalog.price(plan, interval)}],
            "proration_behavior": proration}))

    def set_cancel_at_period_end(self, cancel: bool, reason: str | None = None) -> None:
        params: dict[str, Any] = {"cancel_at_period_end": cancel}
        if cancel and reason:
            params["cancellation_details"] = {"feedback": reason}
        self.step(lambda: self.client.v1.subscriptions.update(self.run.objects["subscription"], params=params))

    def schedule_downgrade(self, plan: str) -> str:
        """Keep the current price until the period ends, then move to `plan` (Stripe's scheduled downgrade)."""
        subscription_id = self.run.objects["subscription"]
        schedule = self.step(lambda: self.client.v1.subscription_schedules.create(
            params={"from_subscription": subscription_id}))
        phase = schedule.phases[0]
        self.step(lambda: self.client.v1.subscription_schedules.update(schedule.id, params={
            "end_behavior": "release",
            "phases": [
                {"items": [{"price": phase["items"][0].price, "quantity": 1}], "start_date": phase.start_date,
                 "end_date": phase.end_date},
                {"items": [{"price": self.catalog.price(plan), "quantity": 1}], "iterations": 1},
            ]}))
        self.run.objects["schedule"] = schedule.id
        return schedule.id

    def latest_charge(self) -> str:
        charges = self.client.v1.charges.list(params={"customer": self.run.customer_id, "limit": 1})
        return charges.data[0].id

    def latest_invoice(self) -> str:
        invoices = self.client.v1.invoices.list(params={"customer": self.run.customer_id, "limit": 1})
        return invoices.data[0].id


# --- the lifecycles -------------------------------------------------------------------------------

def subscribe(demo: StripeDemo, tenant_id: str, plan: str = "standard", interval: str = "month",
              country: str = "DK") -> ScenarioRun:
    """A new customer subscribes to a paid plan and pays the first invoice."""
    s = Scenario(demo, "subscribe", tenant_id)
    s.customer(country=country)
    s.subscribe(plan, interval)
    return s.run


def renew(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """A monthly subscription renews once: new period, invoice, payment."""
    s = Scenario(demo, "renew", tenant_id)
    s.customer()
    s.subscribe("standard")
    s.past_period_end()
    return s.run


def upgrade_with_proration(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """Ten days in, standard → premium, with the unused time credited and the rest charged now."""
    s = Scenario(demo, "upgrade_with_proration", tenant_id)
    s.customer()
    s.subscribe("standard")
    s.advance(days=10)
    s.change_plan("premium", proration="always_invoice")
    return s.run


def downgrade_scheduled_then_released(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """Premium → standard scheduled for the period end, then the schedule is released (no downgrade)."""
    s = Scenario(demo, "downgrade_scheduled_then_released", tenant_id)
    s.customer()
    s.subscribe("premium")
    s.advance(days=5)
    schedule = s.schedule_downgrade("standard")
    s.advance(days=2)
    s.step(lambda: s.client.v1.subscription_schedules.release(schedule))
    return s.run


def downgrade_takes_effect(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """Premium → standard scheduled for the period end, which then arrives."""
    s = Scenario(demo, "downgrade_takes_effect", tenant_id)
    s.customer()
    s.subscribe("premium")
    s.advance(days=5)
    s.schedule_downgrade("standard")
    s.past_period_end()
    return s.run


def cancel_at_period_end_then_reactivate(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """The customer cancels (at period end), then changes their mind before it ends."""
    s = Scenario(demo, "cancel_at_period_end_then_reactivate", tenant_id)
    s.customer()
    s.subscribe("standard")
    s.advance(days=8)
    s.set_cancel_at_period_end(True, reason="too_expensive")
    s.advance(days=4)
    s.set_cancel_at_period_end(False)
    return s.run


def cancel_at_period_end_then_expire(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """The customer cancels at period end, and the subscription ends then."""
    s = Scenario(demo, "cancel_at_period_end_then_expire", tenant_id)
    s.customer()
    s.subscribe("standard")
    s.advance(days=8)
    s.set_cancel_at_period_end(True, reason="unused")
    s.past_period_end()
    return s.run


def immediate_cancel(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """An admin cancels the subscription at once."""
    s = Scenario(demo, "immediate_cancel", tenant_id)
    s.customer()
    s.subscribe("premium")
    s.advance(days=3)
    s.step(lambda: s.client.v1.subscriptions.cancel(s.run.objects["subscription"]))
    return s.run


def payment_failed_then_recovered(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """The renewal payment fails (past due); the customer adds a working card and pays."""
    s = Scenario(demo, "payment_failed_then_recovered", tenant_id)
    s.customer()
    s.subscribe("standard")
    s.set_card("chargeCustomerFail")
    s.past_period_end()
    invoice = s.latest_invoice()
    s.advance(days=1)
    s.set_card("visa")
    s.step(lambda: s.client.v1.invoices.pay(invoice))
    s.run.objects["failed_invoice"] = invoice
    return s.run


def payment_failed_then_suspended(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """The renewal payment keeps failing until Stripe gives up and cancels the subscription."""
    s = Scenario(demo, "payment_failed_then_suspended", tenant_id)
    s.customer()
    s.subscribe("standard")
    s.set_card("chargeCustomerFail")
    s.past_period_end()
    s.run.objects["failed_invoice"] = s.latest_invoice()
    for _ in range(4):
        s.advance(days=7)
    return s.run


def refund(demo: StripeDemo, tenant_id: str, partial: bool = False) -> ScenarioRun:
    """The first payment is refunded, in full or in part."""
    s = Scenario(demo, "partial_refund" if partial else "full_refund", tenant_id)
    s.customer()
    s.subscribe("premium")
    s.advance(days=2)
    charge = s.latest_charge()
    params: dict[str, Any] = {"charge": charge, "reason": "requested_by_customer"}
    if partial:
        amount = s.client.v1.charges.retrieve(charge).amount
        params["amount"] = amount // 4
    created = s.step(lambda: s.client.v1.refunds.create(params=params))
    s.run.objects.update(charge=charge, refund=created.id)
    return s.run


def credit_note_then_void(demo: StripeDemo, tenant_id: str, with_refund: bool) -> ScenarioRun:
    """A credit note on the paid first invoice (refunded to the card, or credited to the balance), then voided."""
    s = Scenario(demo, "credit_note_with_refund_then_void" if with_refund else "credit_note_then_void", tenant_id)
    s.customer()
    s.subscribe("standard")
    s.advance(days=4)
    invoice = s.client.v1.invoices.retrieve(s.latest_invoice())
    amount = invoice.total // 2
    params: dict[str, Any] = {"invoice": invoice.id, "amount": amount, "reason": "product_unsatisfactory"}
    params["refund_amount" if with_refund else "credit_amount"] = amount
    note = s.step(lambda: s.client.v1.credit_notes.create(params=params))
    if not with_refund:
        # A refunded credit note cannot be voided at Stripe; a balance credit can.
        s.advance(days=1)
        s.step(lambda: s.client.v1.credit_notes.void_credit_note(note.id))
    s.run.objects.update(invoice=invoice.id, credit_note=note.id)
    return s.run


def billing_info_and_payment_method_updates(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """The customer corrects their billing address and VAT id, and replaces and updates their card."""
    s = Scenario(demo, "billing_info_and_payment_method_updates", tenant_id)
    s.customer(country="DE")
    s.subscribe("standard")
    s.advance(days=3)
    s.step(lambda: s.client.v1.customers.update(s.run.customer_id, params={
        "name": "Renamed GmbH", "address": {"line1": "Neue Straße 5", "postal_code": "10115", "city": "Berlin",
                                            "country": "DE"}}))
    s.step(lambda: s.client.v1.customers.tax_ids.create(
        s.run.customer_id, params={"type": "eu_vat", "value": "DE999999999"}))
    method = s.set_card("mastercard")
    s.step(lambda: s.client.v1.payment_methods.update(method, params={"card": {"exp_month": 9, "exp_year": 2031}}))
    return s.run


def yearly_plan(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """A customer pays for a year of premium at once."""
    s = Scenario(demo, "yearly_plan", tenant_id)
    s.customer(country="SE")
    s.subscribe("premium", "year")
    return s.run


def forever_coupon(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """A 20 % forever coupon lowers every invoice, the renewal included."""
    s = Scenario(demo, "forever_coupon", tenant_id)
    coupon = s.client.v1.coupons.create(params={"percent_off": "20", "duration": "forever"})
    s.run.objects["coupon"] = coupon.id
    s.step(lambda: None)
    s.customer()
    s.subscribe("standard", coupon=coupon.id)
    s.past_period_end()
    return s.run


def plan_change_while_canceling(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """The customer cancels at period end, then upgrades, which keeps the cancellation pending."""
    s = Scenario(demo, "plan_change_while_canceling", tenant_id)
    s.customer()
    s.subscribe("standard")
    s.advance(days=6)
    s.set_cancel_at_period_end(True)
    s.advance(days=2)
    s.change_plan("premium")
    return s.run


def customer_deleted(demo: StripeDemo, tenant_id: str) -> ScenarioRun:
    """The Stripe customer is deleted, which ends its subscription first."""
    s = Scenario(demo, "customer_deleted", tenant_id)
    s.customer()
    s.subscribe("standard")
    s.advance(days=9)
    s.step(lambda: s.client.v1.customers.delete(s.run.customer_id))
    return s.run


SCENARIOS: dict[str, Callable[[StripeDemo, str], ScenarioRun]] = {
    "subscribe": subscribe,
    "renew": renew,
    "upgrade_with_proration": upgrade_with_proration,
    "downgrade_scheduled_then_released": downgrade_scheduled_then_released,
    "downgrade_takes_effect": downgrade_takes_effect,
    "cancel_at_period_end_then_reactivate": cancel_at_period_end_then_reactivate,
    "cancel_at_period_end_then_expire": cancel_at_period_end_then_expire,
    "immediate_cancel": immediate_cancel,
    "payment_failed_then_recovered": payment_failed_then_recovered,
    "payment_failed_then_suspended": payment_failed_then_suspended,
    "full_refund": refund,
    "partial_refund": lambda demo, tenant_id: refund(demo, tenant_id, partial=True),
    "credit_note_with_refund": lambda demo, tenant_id: credit_note_then_void(demo, tenant_id, with_refund=True),
    "credit_note_then_void": lambda demo, tenant_id: credit_note_then_void(demo, tenant_id, with_refund=False),
    "billing_info_and_payment_method_updates": billing_info_and_payment_method_updates,
    "yearly_plan": yearly_plan,
    "forever_coupon": forever_coupon,
    "plan_change_while_canceling": plan_change_while_canceling,
    "customer_deleted": customer_deleted,
}
