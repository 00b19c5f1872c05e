"""Each lifecycle scenario against the sandbox: the Stripe events it causes, in order, and what they say."""
from decimal import Decimal

import pytest

from backoffice.demo.scenarios import SCENARIOS
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from tests.stripe_sandbox.conftest import create_endpoint

OLD_API_VERSION = "2020-03-02"

START = 1767225600  # 2026-01-01T00:00:00Z

SETUP = ["customer.created", "customer.tax_id.created", "payment_method.attached", "customer.updated"]
PAID = ["invoice.created", "invoice.finalized", "charge.succeeded", "invoice_payment.paid", "invoice.paid",
        "invoice.payment_succeeded"]
SUBSCRIBED = [*SETUP, "customer.subscription.created", *PAID]
CARD_SWAP = ["payment_method.attached", "customer.updated"]
FAILED = ["charge.failed", "invoice.payment_failed"]

EXPECTED = {
    "subscribe": SUBSCRIBED,
    "renew": [*SUBSCRIBED, "customer.subscription.updated", *PAID],
    "upgrade_with_proration": [*SUBSCRIBED, "customer.subscription.updated", *PAID],
    "downgrade_scheduled_then_released": [
        *SUBSCRIBED, "subscription_schedule.created", "customer.subscription.updated", "subscription_schedule.updated",
        "subscription_schedule.released", "customer.subscription.updated"],
    "downgrade_takes_effect": [
        *SUBSCRIBED, "subscription_schedule.created", "customer.subscription.updated", "subscription_schedule.updated",
        # at the period end: the schedule enters its next phase, the price swaps, then the renewal bills it
        "subscription_schedule.updated", "customer.subscription.updated", "customer.subscription.updated", *PAID],
    "cancel_at_period_end_then_reactivate": [*SUBSCRIBED, "customer.subscription.updated",
                                             "customer.subscription.updated"],
    "cancel_at_period_end_then_expire": [*SUBSCRIBED, "customer.subscription.updated",
                                         "customer.subscription.deleted"],
    "immediate_cancel": [*SUBSCRIBED, "customer.subscription.deleted"],
    "payment_failed_then_recovered": [
        *SUBSCRIBED, *CARD_SWAP, "customer.subscription.updated", "invoice.created", "invoice.finalized", *FAILED,
        "customer.subscription.updated", *CARD_SWAP, *PAID[2:], "customer.subscription.updated"],
    "payment_failed_then_suspended": [
        *SUBSCRIBED, *CARD_SWAP, "customer.subscription.updated", "invoice.created", "invoice.finalized", *FAILED,
        "customer.subscription.updated", *FAILED, *FAILED, *FAILED, "customer.subscription.deleted"],
    "full_refund": [*SUBSCRIBED, "refund.created", "charge.refunded"],
    "partial_refund": [*SUBSCRIBED, "refund.created", "charge.refunded"],
    "credit_note_with_refund": [*SUBSCRIBED, "refund.created", "charge.refunded", "credit_note.created",
                                "invoice.updated"],
    "credit_note_then_void": [*SUBSCRIBED, "customer.updated", "credit_note.created", "invoice.updated",
                              "credit_note.voided", "customer.updated", "invoice.updated"],
    "billing_info_and_payment_method_updates": [*SUBSCRIBED, "customer.updated", "customer.tax_id.created",
                                                *CARD_SWAP, "payment_method.updated"],
    "yearly_plan": SUBSCRIBED,
    "forever_coupon": ["coupon.created", *SETUP, "customer.subscription.created", "customer.discount.created", *PAID,
                       "customer.subscription.updated", *PAID],
    "plan_change_while_canceling": [*SUBSCRIBED, "customer.subscription.updated", "customer.subscription.updated",
                                    *PAID],
    "customer_deleted": [*SUBSCRIBED, "customer.subscription.deleted", "customer.deleted"],
}


@pytest.fixture(params=["EUR", "DKK"])
def sandbox_server(request):
    settings = SandboxSettings(currency=request.param, tax_rates={"DK": Decimal(25), "DE": Decimal(19)}, seed=4,
                               start_time=START)
    server = SandboxServer(Sandbox(settings)).start()
    yield server
    server.stop()


@pytest.fixture
def demo(sandbox_server):
    settings = sandbox_server.sandbox.settings
    return StripeDemo.connect(sandbox_server.url, settings.secret_key, settings.currency)


def test_every_scenario_has_its_expectation():
    assert set(EXPECTED) == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_event_sequence(demo, name):
    run = SCENARIOS[name](demo, f"ten_{name}")
    assert run.event_types == EXPECTED[name]
    assert all(event["data"]["object"].get("currency") in (None, demo.catalog.currency) for event in run.events)
    created = [event["created"] for event in run.events]
    assert created == sorted(created)
    customer_created = run.events[SETUP.index("customer.created") if run.events[0]["type"] != "coupon.created" else 1]
    assert customer_created["data"]["object"]["metadata"] == {"tenant_id": f"ten_{name}"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_events_as_delivered_in_the_pre_2025_shape(sandbox_server, demo, webhook_receiver, name):
    """The same lifecycle, as a webhook endpoint pinned to API version 2020-03-02 receives it."""
    create_endpoint(demo.client, webhook_receiver.url, api_version=OLD_API_VERSION)
    run = SCENARIOS[name](demo, f"ten_{name}")
    sandbox_server.sandbox.webhooks.wait_idle()
    mine = set(run.event_ids)
    delivered = [r.event for r in webhook_receiver.received if r.event["id"] in mine]
    assert [event["type"] for event in delivered] == EXPECTED[name]
    assert {event["api_version"] for event in delivered} == {OLD_API_VERSION}
    for event in delivered:
        obj = event["data"]["object"]
        if obj["object"] == "subscription":
            # Before basil the period sat on the subscription itself, not on its items.
            assert obj["current_period_start"] < obj["current_period_end"]
            assert "current_period_end" not in obj["items"]["data"][0]
        if obj["object"] == "invoice" and obj.get("billing_reason", "").startswith("subscription"):
            assert obj["subscription"] == run.objects["subscription"]
    if name == "renew":
        renewal = next(e for e in delivered if e["type"] == "customer.subscription.updated")["data"]
        assert renewal["previous_attributes"]["current_period_end"] == renewal["object"]["current_period_start"]


def by_type(run, event_type):
    return [event for event in run.events if event["type"] == event_type]


def test_one_change_shares_one_second(demo):
    run = SCENARIOS["subscribe"](demo, "ten_same_second")
    subscribe_events = run.events[len(SETUP):]
    assert len({event["created"] for event in subscribe_events}) == 1


def test_renewal_moves_the_item_period(demo):
    run = SCENARIOS["renew"](demo, "ten_renew")
    renewal = by_type(run, "customer.subscription.updated")[0]["data"]
    old_item = renewal["previous_attributes"]["items"]["data"][0]
    new_item = renewal["object"]["items"]["data"][0]
    assert old_item["current_period_end"] == new_item["current_period_start"]
    assert "latest_invoice" in renewal["previous_attributes"]


def test_upgrade_names_the_old_price(demo):
    run = SCENARIOS["upgrade_with_proration"](demo, "ten_upgrade")
    update = by_type(run, "customer.subscription.updated")[0]["data"]
    assert update["previous_attributes"]["items"]["data"][0]["price"]["id"] == demo.catalog.price("standard")
    assert update["object"]["items"]["data"][0]["price"]["id"] == demo.catalog.price("premium")
    proration = by_type(run, "invoice.created")[1]["data"]["object"]
    assert proration["billing_reason"] == "subscription_update"
    assert sorted(line["amount"] < 0 for line in proration["lines"]["data"]) == [False, True]


def test_cancel_then_reactivate_flips_cancel_at_period_end(demo):
    run = SCENARIOS["cancel_at_period_end_then_reactivate"](demo, "ten_reactivate")
    cancel, reactivate = (event["data"] for event in by_type(run, "customer.subscription.updated"))
    assert (cancel["previous_attributes"]["cancel_at_period_end"], cancel["object"]["cancel_at_period_end"]) == (False, True)
    assert (reactivate["previous_attributes"]["cancel_at_period_end"], reactivate["object"]["cancel_at_period_end"]) == (
        True, False)


def test_payment_failure_moves_to_past_due_and_back(demo):
    run = SCENARIOS["payment_failed_then_recovered"](demo, "ten_recovered")
    updates = [event["data"] for event in by_type(run, "customer.subscription.updated")]
    assert (updates[1]["previous_attributes"]["status"], updates[1]["object"]["status"]) == ("active", "past_due")
    assert (updates[2]["previous_attributes"]["status"], updates[2]["object"]["status"]) == ("past_due", "active")


def test_retries_exhausted_cancel_for_payment_failure(demo):
    run = SCENARIOS["payment_failed_then_suspended"](demo, "ten_suspended")
    attempts = [event["data"]["object"]["attempt_count"] for event in by_type(run, "invoice.payment_failed")]
    assert attempts == [1, 2, 3, 4]
    ended = by_type(run, "customer.subscription.deleted")[0]["data"]["object"]
    assert (ended["status"], ended["cancellation_details"]["reason"]) == ("canceled", "payment_failed")


def test_partial_refund_keeps_the_charge_partly_paid(demo):
    run = SCENARIOS["partial_refund"](demo, "ten_partial")
    refunded = by_type(run, "charge.refunded")[0]["data"]
    assert refunded["previous_attributes"]["amount_refunded"] == 0
    assert 0 < refunded["object"]["amount_refunded"] < refunded["object"]["amount"]
    assert refunded["object"]["refunded"] is False


def test_voided_credit_note_gives_the_credit_back(demo):
    run = SCENARIOS["credit_note_then_void"](demo, "ten_void")
    voided = by_type(run, "credit_note.voided")[0]["data"]
    assert (voided["previous_attributes"]["status"], voided["object"]["status"]) == ("issued", "void")
    balance_moves = [event["data"]["object"]["balance"] for event in by_type(run, "customer.updated")[-2:]]
    assert balance_moves[0] < 0 and balance_moves[1] == 0


def test_forever_coupon_discounts_every_invoice(demo):
    run = SCENARIOS["forever_coupon"](demo, "ten_coupon")
    invoices = [event["data"]["object"] for event in by_type(run, "invoice.finalized")]
    assert len(invoices) == 2
    assert all(invoice["subtotal"] == 4900 and invoice["total_excluding_tax"] == 3920 for invoice in invoices)


def test_yearly_plan_bills_a_year(demo):
    run = SCENARIOS["yearly_plan"](demo, "ten_yearly")
    item = by_type(run, "customer.subscription.created")[0]["data"]["object"]["items"]["data"][0]
    assert item["price"]["recurring"]["interval"] == "year"
    assert item["current_period_end"] - item["current_period_start"] >= 365 * 86400
