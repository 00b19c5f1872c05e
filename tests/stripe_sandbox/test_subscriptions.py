"""Subscriptions through the real SDK: create and pay, change with prorations, cancel, list; their events.

Every test writes down the event sequence the sandbox emits for the operation (Stripe's, as documented in
the billing engine's docstrings). Prices are EUR, exclusive of tax; customers are Danish (25 % VAT).
"""
import pytest
import stripe

from tests.stripe_sandbox.billing_helpers import (
    DAY,
    EventTail,
    advance,
    at,
    make_customer,
    make_price,
    previous,
    set_default_card,
    single_instant,
    subscribe,
    types,
)
from tests.stripe_sandbox.conftest import START

FIRST_PAYMENT = ["invoice.created", "invoice.finalized", "charge.succeeded", "invoice_payment.paid", "invoice.paid",
                 "invoice.payment_succeeded"]


@pytest.fixture
def business(stripe_client):
    return make_price(stripe_client, 19900, name="Business")


@pytest.fixture
def customer(stripe_client):
    return make_customer(stripe_client)


def test_create_bills_and_pays_the_first_period(stripe_client, customer, premium):
    tail = EventTail(stripe_client)
    sub = subscribe(stripe_client, customer, premium, metadata={"tenant_id": "ten_1"})

    assert (sub.status, sub.customer, sub.currency, sub.metadata.to_dict()) == ("active", customer.id, "eur",
                                                                                {"tenant_id": "ten_1"})
    item = sub["items"].data[0]
    # Basil: the period lives on the items, not on the subscription.
    assert (item.current_period_start, item.current_period_end) == (START, at(2026, 2, 1))
    assert "current_period_end" not in sub.to_dict()
    assert (item.price.id, item.plan.amount, item.quantity) == (premium.id, 9900, 1)
    assert (sub.billing_cycle_anchor, sub.start_date, sub.cancel_at_period_end) == (START, START, False)

    # customer.subscription.created (already active: the payment happened in the same request), then the
    # first invoice's life: created, finalized, paid by card.
    events = tail.read()
    assert types(events) == ["customer.subscription.created", *FIRST_PAYMENT]
    assert single_instant(events) == START
    assert len({event.request.id for event in events}) == 1 and events[0].request.id.startswith("req_")
    created = events[0].data.object
    assert (created.status, created.latest_invoice) == ("active", sub.latest_invoice)

    expanded = stripe_client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice.payments"]})
    invoice = expanded.latest_invoice
    assert (invoice.billing_reason, invoice.status, invoice.total, invoice.amount_paid) == (
        "subscription_create", "paid", 12375, 12375)
    assert invoice.parent.subscription_details.subscription == sub.id
    payment = invoice.payments.data[0]
    assert (payment.object, payment.status, payment.amount_paid, payment.payment.type) == (
        "invoice_payment", "paid", 12375, "charge")


def test_a_declined_first_payment_leaves_the_subscription_incomplete_until_paid(stripe_client, premium):
    customer = make_customer(stripe_client, card="pm_card_chargeCustomerFail")
    tail = EventTail(stripe_client)
    sub = subscribe(stripe_client, customer, premium)

    assert sub.status == "incomplete"
    # The created event shows the incomplete subscription; the declined charge fails the invoice.
    assert types(tail.read()) == ["customer.subscription.created", "invoice.created", "invoice.finalized",
                                  "charge.failed", "invoice.payment_failed"]
    invoice = stripe_client.v1.invoices.retrieve(sub.latest_invoice)
    # A first invoice is the customer's to pay: no automatic retry.
    assert (invoice.status, invoice.attempt_count, invoice.attempted, invoice.next_payment_attempt) == (
        "open", 1, True, None)

    set_default_card(stripe_client, customer.id, "pm_card_visa")
    tail.read()
    paid = stripe_client.v1.invoices.pay(invoice.id)
    assert (paid.status, paid.attempt_count) == ("paid", 2)
    events = tail.read()
    # Paying recovers it: the payment's events, then customer.subscription.updated incomplete → active.
    assert types(events) == ["charge.succeeded", "invoice_payment.paid", "invoice.paid", "invoice.payment_succeeded",
                             "customer.subscription.updated"]
    assert previous(events[-1]) == {"status": "incomplete"}
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_error_if_incomplete_leaves_nothing_behind_on_a_decline(stripe_client, sandbox, premium):
    customer = make_customer(stripe_client, card="pm_card_chargeCustomerFail")
    tail = EventTail(stripe_client)
    objects = dict(sandbox.store.objects)

    with pytest.raises(stripe.CardError) as declined:
        subscribe(stripe_client, customer, premium, payment_behavior="error_if_incomplete")

    assert (declined.value.http_status, declined.value.code) == (402, "card_declined")
    assert tail.read() == []
    assert sandbox.store.objects.keys() == objects.keys()
    assert list(stripe_client.v1.subscriptions.list(params={"status": "all"}).auto_paging_iter()) == []
    assert list(stripe_client.v1.charges.list().auto_paging_iter()) == []


def test_a_plan_change_to_a_price_that_does_not_exist_changes_nothing(stripe_client, customer, premium):
    sub = subscribe(stripe_client, customer, premium)
    tail = EventTail(stripe_client)

    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.subscriptions.update(sub.id, params={
            "items": [{"id": sub["items"].data[0].id, "price": "price_missing"}]})

    assert (missing.value.code, missing.value.param, missing.value.http_status) == (
        "resource_missing", "items[0][price]", 404)
    assert tail.read() == []
    assert stripe_client.v1.subscriptions.retrieve(sub.id).to_dict() == sub.to_dict()


def test_an_upgrade_mid_period_is_prorated_on_an_invoice_paid_at_once(stripe_client, customer, premium, business):
    sub = subscribe(stripe_client, customer, premium)
    item = sub["items"].data[0]
    advance(stripe_client, to=at(2026, 1, 16))  # 15 of the period's 31 days used, 16 left
    tail = EventTail(stripe_client)

    updated = stripe_client.v1.subscriptions.update(sub.id, params={"items": [{"id": item.id, "price": business.id}]})

    assert updated["items"].data[0].price.id == business.id and updated["items"].data[0].id == item.id
    events = tail.read()
    # customer.subscription.updated (the old item and latest_invoice in previous_attributes), then the
    # proration invoice's life.
    assert types(events) == ["customer.subscription.updated", *FIRST_PAYMENT]
    assert single_instant(events) == at(2026, 1, 16)
    change = previous(events[0])
    assert change.keys() == {"items", "latest_invoice"}
    assert change["items"]["data"][0]["price"]["id"] == premium.id

    invoice = stripe_client.v1.invoices.retrieve(updated.latest_invoice)
    assert invoice.billing_reason == "subscription_update"
    lines = invoice.lines.data
    assert [(line.description, line.amount, line.taxes[0].amount) for line in lines] == [
        ("Unused time on Premium after 16 Jan 2026", -5110, -1278),  # 9900 × 16/31, tax rounded half away from 0
        ("Remaining time on Business after 16 Jan 2026", 10271, 2568),
    ]
    assert all(line.parent.subscription_item_details.proration for line in lines)
    assert {(line.period.start, line.period.end) for line in lines} == {(at(2026, 1, 16), at(2026, 2, 1))}
    assert (invoice.subtotal, invoice.total, invoice.amount_paid, invoice.status) == (5161, 6451, 6451, "paid")


def test_a_downgrade_credits_the_difference_to_the_customer_balance(stripe_client, customer, premium, business):
    sub = subscribe(stripe_client, customer, business)
    advance(stripe_client, to=at(2026, 1, 16))
    tail = EventTail(stripe_client)

    stripe_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": premium.id}], "proration_behavior": "always_invoice"})

    events = tail.read()
    # A negative total is not refunded: it becomes customer credit (customer.updated, balance), and the invoice
    # is paid with nothing to charge.
    assert types(events) == ["customer.subscription.updated", "invoice.created", "invoice.finalized",
                             "customer.updated", "invoice.paid", "invoice.payment_succeeded"]
    assert previous(events[3]) == {"balance": 0}
    invoice = events[-1].data.object
    assert (invoice.total, invoice.amount_due, invoice.ending_balance) == (-6451, 0, -6451)
    assert stripe_client.v1.customers.retrieve(customer.id).balance == -6451

    advance(stripe_client, to=at(2026, 2, 1))
    renewal = stripe_client.v1.invoices.list(params={"subscription": sub.id, "limit": 1}).data[0]
    # The renewal spends the credit first: 12375 − 6451 is charged.
    assert (renewal.starting_balance, renewal.ending_balance, renewal.amount_due, renewal.amount_paid) == (
        -6451, 0, 5924, 5924)


def test_a_change_without_proration_only_updates_the_subscription(stripe_client, customer, premium, business):
    sub = subscribe(stripe_client, customer, business)
    tail = EventTail(stripe_client)

    stripe_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": premium.id}], "proration_behavior": "none"})

    events = tail.read()
    assert types(events) == ["customer.subscription.updated"]
    assert previous(events[0]).keys() == {"items"}
    assert len(list(stripe_client.v1.invoices.list(params={"subscription": sub.id}).auto_paging_iter())) == 1


def test_a_quantity_change_is_prorated_per_seat(stripe_client, customer, premium):
    sub = subscribe(stripe_client, customer, premium)
    advance(stripe_client, to=at(2026, 1, 16))

    updated = stripe_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "quantity": 3}]})

    assert updated["items"].data[0].quantity == 3
    invoice = stripe_client.v1.invoices.retrieve(updated.latest_invoice)
    assert [(line.description, line.quantity, line.amount) for line in invoice.lines.data] == [
        ("Unused time on Premium after 16 Jan 2026", 1, -5110),
        ("Remaining time on 3 × Premium after 16 Jan 2026", 3, 15329),  # 29700 × 16/31
    ]


def test_moving_to_a_yearly_price_restarts_the_billing_cycle(stripe_client, customer, premium):
    yearly = make_price(stripe_client, 99000, name="Premium yearly", interval="year")
    sub = subscribe(stripe_client, customer, premium)
    advance(stripe_client, to=at(2026, 1, 16))

    updated = stripe_client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": sub["items"].data[0].id, "price": yearly.id}]})

    item = updated["items"].data[0]
    assert (updated.billing_cycle_anchor, item.current_period_start, item.current_period_end) == (
        at(2026, 1, 16), at(2026, 1, 16), at(2027, 1, 16))
    invoice = stripe_client.v1.invoices.retrieve(updated.latest_invoice)
    # Credit for the unused month, the new year in full.
    assert [(line.amount, line.parent.subscription_item_details.proration) for line in invoice.lines.data] == [
        (-5110, True), (99000, False)]


def test_cancel_at_period_end_can_be_set_and_taken_back(stripe_client, customer, premium):
    sub = subscribe(stripe_client, customer, premium)
    advance(stripe_client, to=at(2026, 1, 10))
    tail = EventTail(stripe_client)

    canceling = stripe_client.v1.subscriptions.update(sub.id, params={
        "cancel_at_period_end": True, "cancellation_details": {"feedback": "too_expensive"}})
    resumed = stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})

    assert (canceling.status, canceling.cancel_at, canceling.canceled_at) == ("active", at(2026, 2, 1), at(2026, 1, 10))
    assert canceling.cancellation_details.to_dict() == {"comment": None, "feedback": "too_expensive",
                                                        "reason": "cancellation_requested"}
    assert (resumed.cancel_at, resumed.canceled_at, resumed.cancellation_details.reason) == (None, None, None)
    set_event, unset_event = tail.read()
    # One customer.subscription.updated each way, with the cancellation fields in previous_attributes.
    assert (set_event.type, unset_event.type) == ("customer.subscription.updated", "customer.subscription.updated")
    assert previous(set_event) == {"cancel_at_period_end": False, "cancel_at": None, "canceled_at": None,
                                   "cancellation_details": {"feedback": None, "reason": None}}
    assert previous(unset_event) == {"cancel_at_period_end": True, "cancel_at": at(2026, 2, 1),
                                     "canceled_at": at(2026, 1, 10),
                                     "cancellation_details": {"feedback": "too_expensive",
                                                              "reason": "cancellation_requested"}}


def test_cancel_now_ends_the_subscription(stripe_client, customer, premium):
    sub = subscribe(stripe_client, customer, premium)
    advance(stripe_client, days=3)
    tail = EventTail(stripe_client)

    canceled = stripe_client.v1.subscriptions.cancel(sub.id, params={
        "invoice_now": True, "prorate": True, "cancellation_details": {"comment": "Closing the account"}})

    assert (canceled.status, canceled.ended_at, canceled.canceled_at) == ("canceled", START + 3 * DAY,
                                                                         START + 3 * DAY)
    assert canceled.cancellation_details.to_dict() == {"comment": "Closing the account", "feedback": None,
                                                       "reason": "cancellation_requested"}
    events = tail.read()
    assert types(events) == ["customer.subscription.deleted"]
    assert events[0].data.object.status == "canceled"

    relabeled = stripe_client.v1.subscriptions.update(sub.id, params={"metadata": {"note": "kept"}})
    assert relabeled.metadata.note == "kept"
    with pytest.raises(stripe.InvalidRequestError, match="canceled subscription"):
        stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.cancel(sub.id)


def test_list_filters_by_customer_status_and_price_and_pages(stripe_client, premium, business):
    first, second = make_customer(stripe_client), make_customer(stripe_client)
    subs = [subscribe(stripe_client, first, premium), subscribe(stripe_client, first, business),
            subscribe(stripe_client, second, premium)]
    stripe_client.v1.subscriptions.cancel(subs[1].id)

    def listed(**params):
        return [s.id for s in stripe_client.v1.subscriptions.list(params={"limit": 1, **params}).auto_paging_iter()]

    assert listed() == [subs[2].id, subs[0].id]  # newest first, ended ones left out by default
    assert listed(status="all") == [s.id for s in subs[::-1]]
    assert listed(status="canceled") == listed(status="ended") == [subs[1].id]
    assert listed(customer=first.id, status="all") == [subs[1].id, subs[0].id]
    assert listed(price=premium.id) == [subs[2].id, subs[0].id]
    items = stripe_client.v1.subscription_items.list(params={"subscription": subs[0].id})
    assert [item.id for item in items.data] == [subs[0]["items"].data[0].id]


def test_deleting_a_customer_cancels_its_subscriptions_first(stripe_client, customer, premium, business):
    subs = [subscribe(stripe_client, customer, premium), subscribe(stripe_client, customer, business)]
    tail = EventTail(stripe_client)

    stripe_client.v1.customers.delete(customer.id)

    events = tail.read()
    assert types(events) == ["customer.subscription.deleted", "customer.subscription.deleted", "customer.deleted"]
    assert [event.data.object.id for event in events[:2]] == [s.id for s in subs]
    assert {stripe_client.v1.subscriptions.retrieve(s.id).status for s in subs} == {"canceled"}


def test_default_incomplete_waits_for_the_first_payment(stripe_client, customer, premium):
    tail = EventTail(stripe_client)
    sub = subscribe(stripe_client, customer, premium, payment_behavior="default_incomplete")

    assert sub.status == "incomplete"
    assert types(tail.read()) == ["customer.subscription.created", "invoice.created", "invoice.finalized"]
    assert stripe_client.v1.invoices.retrieve(sub.latest_invoice).attempt_count == 0
    with pytest.raises(stripe.InvalidRequestError, match="incomplete"):
        stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})

    stripe_client.v1.invoices.pay(sub.latest_invoice)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_subscribing_without_a_payment_method_is_refused(stripe_client, premium):
    customer = make_customer(stripe_client, card=None)
    with pytest.raises(stripe.InvalidRequestError, match="no attached payment source"):
        subscribe(stripe_client, customer, premium)
    assert list(stripe_client.v1.invoices.list().auto_paging_iter()) == []


def test_request_validation_uses_stripe_errors(stripe_client, customer, premium):
    one_time = stripe_client.v1.prices.create(params={"product": premium.product, "unit_amount": 500,
                                                      "currency": "eur"})
    cases = [
        ({"items": [{"price": one_time.id}]}, "items[0][price]"),
        ({"items": []}, "items"),
        ({"items": [{"price": premium.id, "plan": "x"}]}, "items[0][plan]"),
        ({"items": [{"price": premium.id}], "payment_behavior": "sometimes"}, "payment_behavior"),
        ({"items": [{"price": premium.id}], "default_payment_method": "pm_unknown"}, "default_payment_method"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as error:
            stripe_client.v1.subscriptions.create(params={"customer": customer.id, **params})
        assert error.value.param == param, params
