"""The seed's table (reference §1.3) and DESIGN §4.1–§4.6, row by row, through the real webhook with signed
payloads. Rows the sandbox's lifecycles produce are covered by test_scenario_ledgers; here are the others:
conditions Stripe reaches rarely, crafted from real sandbox events and signed like Stripe signs them."""
import copy

from backoffice.demo.scenarios import SCENARIOS
from tests.billing.harness import D, info_row, mrr_row

T = "ten_rules"


def subscribed(harness, scenario="subscribe"):
    harness.tenant(T)
    run = SCENARIOS[scenario](harness.demo, T)
    harness.settle()
    return run


def crafted(event, suffix, **changes):
    """A copy of a delivered event under a new id (a Stripe event that happened differently)."""
    event = copy.deepcopy(event)
    event["id"] = f"{event['id']}_{suffix}"
    event["created"] += 60
    for path, value in changes.items():
        target = event
        *parents, last = path.split(".")
        for name in parents:
            target = target[name]
        if value is None and last in target:
            del target[last]
        else:
            target[last] = value
    return event


def last_row(harness):
    return harness.ledger(T)[-1]


def test_customer_updated_without_billing_fields_is_noop(harness):
    subscribed(harness)
    customer = harness.delivered_events("customer.created")[0]["data"]["object"]["id"]
    harness.demo.client.v1.customers.update(customer, params={"metadata": {"tenant_id": T, "crm": "42"}})
    harness.settle()
    assert last_row(harness) == info_row("NoOp", "standard", "49")


def test_subscription_updated_without_previous_attributes_is_noop(harness):
    subscribed(harness)
    created = harness.delivered_events("customer.subscription.created")[0]
    assert harness.post_event(crafted(created, "bare", type="customer.subscription.updated")).status_code == 200
    harness.replay()
    assert last_row(harness) == info_row("NoOp", "standard", "49")


def test_cancellation_and_plan_change_in_one_update_is_unclassified(harness):
    subscribed(harness, "upgrade_with_proration")
    upgrade = harness.delivered_events("customer.subscription.updated")[0]
    event = crafted(upgrade, "both", **{"data.previous_attributes.cancel_at_period_end": False,
                                         "data.object.cancel_at_period_end": True})
    harness.post_event(event)
    harness.replay()
    assert harness.row_of(event["id"]) == info_row("Unclassified", "premium", "99")


def test_pending_update_events_are_noop(harness):
    subscribed(harness)
    created = harness.delivered_events("customer.subscription.created")[0]
    harness.post_event(crafted(created, "pua", type="customer.subscription.pending_update_applied"))
    harness.post_event(crafted(created, "pue", type="customer.subscription.pending_update_expired"))
    harness.replay()
    assert harness.ledger(T)[-2:] == [info_row("NoOp", "standard", "49")] * 2


def test_schedule_update_after_release_is_noop(harness):
    subscribed(harness, "downgrade_scheduled_then_released")
    released = harness.delivered_events("subscription_schedule.released")[0]
    harness.post_event(crafted(released, "late", type="subscription_schedule.updated"))
    harness.replay()
    assert harness.row_of(released["id"] + "_late") == info_row("NoOp", "premium", "99")


def test_payments_outside_the_billing_cycle_are_noop(harness):
    subscribed(harness, "payment_failed_then_recovered")
    failed = harness.delivered_events("invoice.payment_failed")[0]
    harness.post_event(crafted(failed, "create", **{"data.object.billing_reason": "subscription_create"}))
    harness.replay()
    assert harness.row_of(failed["id"] + "_create") == info_row("NoOp", "standard", "49")


def test_same_plan_at_another_amount_is_never_noop(harness):
    subscribed(harness)
    client = harness.demo.client
    product = client.v1.products.create(params={"name": "Standard 2026", "metadata": {"plan": "standard"}})
    price = client.v1.prices.create(params={"product": product.id, "currency": harness.currency.lower(),
                                            "unit_amount": 5900, "recurring": {"interval": "month"}})
    subscription = harness.delivered_events("customer.subscription.created")[0]["data"]["object"]
    client.v1.subscriptions.update(subscription["id"], params={
        "items": [{"id": subscription["items"]["data"][0]["id"], "price": price.id}],
        "proration_behavior": "none"})
    harness.settle()
    rows = harness.ledger(T, hide_noop=True)
    assert rows[-1] == mrr_row("SubscriptionUpgraded", "standard", "standard", "49", "59", "expansion")


def test_a_price_naming_no_plan_is_unclassified_and_noted(harness, app):
    harness.tenant(T)
    client = harness.demo.client
    product = client.v1.products.create(params={"name": "Mystery"})
    price = client.v1.prices.create(params={"product": product.id, "currency": harness.currency.lower(),
                                            "unit_amount": 1500, "recurring": {"interval": "month"}})
    customer = client.v1.customers.create(params={"metadata": {"tenant_id": T}})
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": card.id}})
    client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}]})
    harness.settle()
    assert ("Unclassified", None, None, None, None, None, D(0), None) in harness.ledger(T)
    assert harness.statuses().get("failed", 0) == 0


def test_a_canceled_schedule_cancels_the_scheduled_downgrade(harness):
    subscribed(harness, "downgrade_scheduled_then_released")
    scheduled = harness.delivered_events("subscription_schedule.updated")[0]
    released = harness.delivered_events("subscription_schedule.released")[0]
    # The same schedule canceled instead of released, a minute after the downgrade was scheduled.
    canceled = crafted(released, "canceled", type="subscription_schedule.canceled",
                       **{"data.object.status": "canceled"})
    canceled["created"] = scheduled["created"] + 1
    harness.post_event(canceled)
    harness.replay()
    assert harness.row_of(canceled["id"]) == mrr_row("SubscriptionDowngradeCancelled", None, "premium", "49", "99",
                                                     "expansion")
    # The release that followed now finds nothing scheduled: its row is corrected to a NoOp.
    assert harness.row_of(released["id"]) == info_row("NoOp", "premium", "99")


def test_a_schedule_released_with_nothing_scheduled_is_noop(harness):
    subscribed(harness, "downgrade_takes_effect")  # the downgrade already took effect
    updated = harness.delivered_events("subscription_schedule.updated")[-1]
    harness.post_event(crafted(updated, "rel", type="subscription_schedule.released",
                               **{"data.object.status": "released"}))
    harness.replay()
    assert harness.row_of(updated["id"] + "_rel") == info_row("NoOp", "standard", "49")
