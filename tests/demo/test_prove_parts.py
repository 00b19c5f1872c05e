"""The parts of `flask billing prove` that stand alone: its lifecycle plans, the sandbox's `shuffle_rate`
delivery knob, and the oracle that reads Stripe's next monthly bill from Stripe's own objects."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from backoffice.demo.prove_lifecycles import ensure_price_book, plan_lifecycles
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.demo.stripe_oracle import StripeOracle
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from backoffice.stripe_sandbox.webhooks import DeliveryKnobs
from tests.stripe_sandbox.conftest import START, create_endpoint


@pytest.fixture
def server():
    settings = SandboxSettings(currency="EUR", tax_rates={"DK": Decimal(25), "DE": Decimal(19)}, seed=5,
                               start_time=START)
    running = SandboxServer(Sandbox(settings)).start()
    yield running
    running.stop()


@pytest.fixture
def demo(server):
    return StripeDemo.connect(server.url, server.sandbox.settings.secret_key, "EUR")


def test_plans_are_deterministic_and_cover_every_story():
    plans = plan_lifecycles(3, 400, 12, START)
    assert [p.actions for p in plans] == [p.actions for p in plan_lifecycles(3, 400, 12, START)]
    actions = Counter(a.name for p in plans for a in p.actions)
    for name in ("subscribe", "change_quantity", "upgrade", "schedule_downgrade", "release_schedule",
                 "cancel_schedule", "cancel_at_period_end", "reactivate", "win_back", "fail_card", "fix_card_and_pay",
                 "refund", "credit_note", "delete_customer", "delete_tenant", "cancel_now"):
        assert actions[name], name
    subscribed = [a.args for p in plans for a in p.actions if a.name == "subscribe"]
    assert {(c["duration"], "percent_off" in c) for s in subscribed if (c := s["coupon"])} == {
        ("forever", True), ("once", True), ("repeating", True), ("once", False), ("repeating", False)}
    assert {s["interval"] for s in subscribed} == {"month", "quarter", "year"}
    assert {s["tax_behavior"] for s in subscribed} == {"inclusive", "exclusive"}
    assert max(s["quantity"] for s in subscribed) > 1


def test_shuffle_rate_holds_back_a_seeded_fraction_and_sends_it_out_of_order(server, demo, webhook_receiver):
    endpoint = create_endpoint(demo.client, webhook_receiver.url)
    server.sandbox.settings.webhook_shuffle_linger_seconds = 60
    path = f"/v1/test_helpers/webhook_endpoints/{endpoint.id}/delivery_knobs"
    knobs = demo._raw("post", path, shuffle_rate="0.3", seed="2")
    assert knobs["shuffle_rate"] == 0.3 and knobs["shuffle"] is False
    emitted = [demo.client.v1.customers.create(params={"name": f"c{n}"}).id for n in range(40)]
    server.sandbox.webhooks.wait_idle()
    received = [r.event["data"]["object"]["id"] for r in webhook_receiver.received]
    held = server.sandbox.webhooks.endpoints[endpoint.id].counts["held_back"]
    assert sorted(received) == sorted(emitted) and received != emitted
    assert 4 < held < 25 and received[:40 - held] == [c for c in emitted if c in set(received[:40 - held])]
    assert DeliveryKnobs(seed=1).to_dict() == {"drop_rate": 0.0, "duplicate_rate": 0.0, "delay_seconds": 0.0,
                                               "shuffle": False, "seed": 1, "drop_customers": ()}


def subscribe(demo, book, country, plan, interval, behavior, quantity=1, coupon=None):
    client = demo.client
    customer = client.v1.customers.create(params={"address": {"country": country}})
    method = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": method.id}})
    params = {"customer": customer.id, "items": [{"price": book.price(plan, interval, behavior), "quantity": quantity}]}
    if coupon:
        params["discounts"] = [{"coupon": client.v1.coupons.create(params=coupon).id}]
    return customer.id, client.v1.subscriptions.create(params=params)


def test_oracle_reads_the_next_monthly_bill_from_stripe(demo):
    book, client = ensure_price_book(demo), demo.client
    oracle = StripeOracle(client)

    def billed(customer_subscription):
        customer_id, subscription = customer_subscription
        return oracle.customer(customer_id, [subscription.id]).amount

    # Two seats of 49.00 a month, less a forever 20 %.
    assert billed(subscribe(demo, book, "DE", "standard", "month", "exclusive", 2,
                            {"percent_off": "20", "duration": "forever"})) == Decimal("78.40")
    # 990.00 a year, VAT included at Denmark's 25 %: 990 / 12 / 1.25.
    assert billed(subscribe(demo, book, "DK", "premium", "year", "inclusive")) == Decimal("66.00")
    # A quarter of standard (147.00) is 49.00 a month; a once or repeating coupon does not lower MRR.
    assert billed(subscribe(demo, book, "DE", "standard", "quarter", "exclusive", 1,
                            {"amount_off": 1000, "currency": "eur", "duration": "repeating",
                             "duration_in_months": 2})) == Decimal("49.00")
    # Canceling at period end: nothing more to bill.
    customer_id, subscription = subscribe(demo, book, "DE", "premium", "month", "exclusive")
    client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    assert billed((customer_id, subscription)) == Decimal("0.00")
    # A scheduled downgrade: the last phase's price is what Stripe bills next.
    customer_id, subscription = subscribe(demo, book, "DE", "premium", "month", "exclusive")
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": subscription.id})
    phase = schedule.phases[0]
    client.v1.subscription_schedules.update(schedule.id, params={"end_behavior": "release", "phases": [
        {"items": [{"price": phase["items"][0].price, "quantity": 1}], "start_date": phase.start_date,
         "end_date": phase.end_date},
        {"items": [{"price": book.price("standard", "month", "exclusive"), "quantity": 1}], "iterations": 1}]})
    assert billed((customer_id, subscription)) == Decimal("49.00")
