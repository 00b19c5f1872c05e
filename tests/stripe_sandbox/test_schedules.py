"""Subscription schedules: the scheduled downgrade at period end, release, cancel, and their events."""
import pytest
import stripe

from tests.stripe_sandbox.billing_helpers import (
    EventTail,
    advance,
    at,
    make_customer,
    make_price,
    previous,
    single_instant,
    subscribe,
    types,
)
from tests.stripe_sandbox.conftest import START

RENEWAL = ["customer.subscription.updated", "invoice.created", "invoice.finalized", "charge.succeeded",
           "invoice_payment.paid", "invoice.paid", "invoice.payment_succeeded"]


@pytest.fixture
def standard(stripe_client):
    return make_price(stripe_client, 4900, name="Standard")


@pytest.fixture
def subscription(stripe_client, premium):
    sub = subscribe(stripe_client, make_customer(stripe_client), premium)
    advance(stripe_client, to=at(2026, 1, 10))
    return sub


def schedule_downgrade(client, subscription, premium, standard, **params):
    """The usual downgrade: phase 1 keeps the price to the period end, phase 2 is the cheaper price."""
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": subscription.id})
    return client.v1.subscription_schedules.update(schedule.id, params={
        "phases": [{"items": [{"price": premium.id, "quantity": 1}], "start_date": START, "end_date": at(2026, 2, 1)},
                   {"items": [{"price": standard.id, "quantity": 1}], "iterations": 1}],
        "end_behavior": "release", **params})


def test_a_schedule_made_from_a_subscription_holds_its_current_period(stripe_client, subscription, premium):
    tail = EventTail(stripe_client)

    schedule = stripe_client.v1.subscription_schedules.create(params={"from_subscription": subscription.id})

    assert (schedule.status, schedule.subscription, schedule.end_behavior) == ("active", subscription.id, "release")
    assert (schedule.current_phase.start_date, schedule.current_phase.end_date) == (START, at(2026, 2, 1))
    assert [(p.start_date, p.end_date, p["items"][0].price) for p in schedule.phases] == [
        (START, at(2026, 2, 1), premium.id)]
    events = tail.read()
    # subscription_schedule.created, then customer.subscription.updated: the subscription now has a schedule.
    assert types(events) == ["subscription_schedule.created", "customer.subscription.updated"]
    assert previous(events[1]) == {"schedule": None}
    assert stripe_client.v1.subscriptions.retrieve(subscription.id).schedule == schedule.id


def test_a_scheduled_downgrade_takes_effect_at_the_period_end_then_releases(stripe_client, subscription, premium,
                                                                           standard):
    tail = EventTail(stripe_client)
    schedule = schedule_downgrade(stripe_client, subscription, premium, standard)

    assert [(p.start_date, p.end_date) for p in schedule.phases] == [(START, at(2026, 2, 1)),
                                                                     (at(2026, 2, 1), at(2026, 3, 1))]
    update = tail.read()[-1]
    assert update.type == "subscription_schedule.updated"
    assert [p["end_date"] for p in previous(update)["phases"]] == [at(2026, 2, 1)]
    assert stripe_client.v1.subscriptions.retrieve(subscription.id)["items"].data[0].price.id == premium.id

    advance(stripe_client, to=at(2026, 2, 1))
    boundary = tail.read()
    # The phase starts (schedule updated, the item's price swapped without proration), then the renewal bills
    # the new price.
    assert types(boundary) == ["subscription_schedule.updated", "customer.subscription.updated", *RENEWAL]
    assert single_instant(boundary) == at(2026, 2, 1)
    assert previous(boundary[0]) == {"current_phase": {"start_date": START, "end_date": at(2026, 2, 1)}}
    assert previous(boundary[1])["items"]["data"][0]["price"]["id"] == premium.id
    assert boundary[-1].data.object.total == 6125  # 4900 + 25 % VAT

    advance(stripe_client, to=at(2026, 3, 1))
    end = tail.read()
    # After the last phase the schedule lets go (release), and the subscription renews on its own.
    assert types(end) == ["subscription_schedule.released", "customer.subscription.updated", *RENEWAL]
    assert previous(end[1]) == {"schedule": schedule.id}
    released = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    assert (released.status, released.released_at, released.released_subscription, released.subscription) == (
        "released", at(2026, 3, 1), subscription.id, None)
    sub = stripe_client.v1.subscriptions.retrieve(subscription.id)
    assert (sub.schedule, sub.status, sub["items"].data[0].price.id) == (None, "active", standard.id)


def test_releasing_keeps_the_subscription_as_it_is(stripe_client, subscription, premium, standard):
    schedule = schedule_downgrade(stripe_client, subscription, premium, standard)
    tail = EventTail(stripe_client)

    released = stripe_client.v1.subscription_schedules.release(schedule.id)

    assert (released.status, released.released_subscription) == ("released", subscription.id)
    events = tail.read()
    assert types(events) == ["subscription_schedule.released", "customer.subscription.updated"]
    assert previous(events[1]) == {"schedule": schedule.id}
    advance(stripe_client, to=at(2026, 2, 1))
    assert types(tail.read()) == RENEWAL  # no phase change: the downgrade was dropped
    assert stripe_client.v1.subscriptions.retrieve(subscription.id)["items"].data[0].price.id == premium.id
    with pytest.raises(stripe.InvalidRequestError, match="released"):
        stripe_client.v1.subscription_schedules.update(schedule.id, params={"metadata": {"a": "b"}})


def test_canceling_a_schedule_cancels_its_subscription(stripe_client, subscription, premium, standard):
    schedule = schedule_downgrade(stripe_client, subscription, premium, standard)
    tail = EventTail(stripe_client)

    canceled = stripe_client.v1.subscription_schedules.cancel(schedule.id)

    assert (canceled.status, canceled.canceled_at, canceled.current_phase) == ("canceled", at(2026, 1, 10), None)
    events = tail.read()
    assert types(events) == ["subscription_schedule.canceled", "customer.subscription.deleted"]
    assert events[1].data.object.status == "canceled"
    advance(stripe_client, to=at(2026, 3, 1))
    assert tail.read() == []


def test_end_behavior_cancel_ends_the_subscription_with_the_last_phase(stripe_client, subscription, premium):
    schedule = stripe_client.v1.subscription_schedules.create(params={"from_subscription": subscription.id})
    stripe_client.v1.subscription_schedules.update(schedule.id, params={"end_behavior": "cancel"})
    tail = EventTail(stripe_client)

    advance(stripe_client, to=at(2026, 2, 5))

    assert types(tail.read()) == ["customer.subscription.deleted", "subscription_schedule.completed"]
    completed = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    assert (completed.status, completed.completed_at) == ("completed", at(2026, 2, 1))


def test_changing_the_current_phase_changes_the_subscription_now(stripe_client, subscription, premium, standard):
    schedule = stripe_client.v1.subscription_schedules.create(params={"from_subscription": subscription.id})
    tail = EventTail(stripe_client)

    stripe_client.v1.subscription_schedules.update(schedule.id, params={
        "phases": [{"items": [{"price": standard.id}], "end_date": at(2026, 2, 1)}], "proration_behavior": "none"})

    assert types(tail.read()) == ["subscription_schedule.updated", "customer.subscription.updated"]
    assert stripe_client.v1.subscriptions.retrieve(subscription.id)["items"].data[0].price.id == standard.id


def test_schedule_requests_are_checked(stripe_client, subscription, premium, standard):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.subscription_schedules.create(params={"customer": subscription.customer})
    assert missing.value.param == "from_subscription"
    schedule = schedule_downgrade(stripe_client, subscription, premium, standard)
    with pytest.raises(stripe.InvalidRequestError, match="already attached to a schedule"):
        stripe_client.v1.subscription_schedules.create(params={"from_subscription": subscription.id})
    with pytest.raises(stripe.InvalidRequestError, match="start date of the current phase"):
        stripe_client.v1.subscription_schedules.update(schedule.id, params={
            "phases": [{"items": [{"price": premium.id}], "start_date": at(2026, 1, 5), "end_date": at(2026, 2, 1)}]})
    with pytest.raises(stripe.InvalidRequestError) as gap:
        stripe_client.v1.subscription_schedules.update(schedule.id, params={
            "phases": [{"items": [{"price": premium.id}], "end_date": at(2026, 2, 1)},
                       {"items": [{"price": standard.id}], "start_date": at(2026, 2, 3)}]})
    assert gap.value.param == "phases[1][start_date]"
    with pytest.raises(stripe.InvalidRequestError, match="managed by the subscription schedule"):
        stripe_client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    listed = stripe_client.v1.subscription_schedules.list(params={"customer": subscription.customer})
    assert [s.id for s in listed.auto_paging_iter()] == [schedule.id]
