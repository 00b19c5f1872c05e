"""The clock: renewals on the billing cycle, payment retries and where dunning ends, period-end cancellations.

What the clock does carries no request (`request.id` null) and is stamped with the instant it fell due.
"""
import pytest

from backoffice.stripe_sandbox.billing import advance_to
from tests.stripe_sandbox.billing_helpers import (
    DAY,
    EventTail,
    advance,
    at,
    make_customer,
    make_price,
    now,
    previous,
    set_default_card,
    single_instant,
    subscribe,
    types,
)
from tests.stripe_sandbox.conftest import START

RENEWAL = ["customer.subscription.updated", "invoice.created", "invoice.finalized"]
PAID = ["charge.succeeded", "invoice_payment.paid", "invoice.paid", "invoice.payment_succeeded"]
DECLINED = ["charge.failed", "invoice.payment_failed"]


def periods(stripe_client, subscription_id):
    item = stripe_client.v1.subscriptions.retrieve(subscription_id)["items"].data[0]
    return item.current_period_start, item.current_period_end


def test_a_renewal_starts_the_next_period_and_bills_it(stripe_client, premium):
    sub = subscribe(stripe_client, make_customer(stripe_client), premium)
    tail = EventTail(stripe_client)

    advance(stripe_client, to=at(2026, 2, 10))

    events = tail.read()
    # customer.subscription.updated (old item periods and latest_invoice in previous_attributes), then the
    # renewal invoice's life, all at the period end and without a request.
    assert types(events) == [*RENEWAL, *PAID]
    assert single_instant(events) == at(2026, 2, 1)
    assert {event.request.id for event in events} == {None}
    change = previous(events[0])
    assert change.keys() == {"items", "latest_invoice"}
    assert change["latest_invoice"] == sub.latest_invoice
    old_item = change["items"]["data"][0]
    assert (old_item["current_period_start"], old_item["current_period_end"]) == (START, at(2026, 2, 1))
    assert periods(stripe_client, sub.id) == (at(2026, 2, 1), at(2026, 3, 1))

    invoice = events[-1].data.object
    # The invoice's own period is the one just ended; its line bills the one just begun.
    assert (invoice.billing_reason, invoice.period_start, invoice.period_end) == (
        "subscription_cycle", START, at(2026, 2, 1))
    line = invoice.lines.data[0]
    assert (line.period.start, line.period.end, line.amount) == (at(2026, 2, 1), at(2026, 3, 1), 9900)
    assert invoice.number.endswith("-0002")
    assert now(stripe_client) == at(2026, 2, 10)


def test_monthly_periods_keep_the_anchor_day_where_the_month_has_it(stripe_client, premium):
    advance(stripe_client, to=at(2026, 1, 31, 9))
    sub = subscribe(stripe_client, make_customer(stripe_client), premium)
    seen = []
    for month_end in (at(2026, 2, 28, 9), at(2026, 3, 31, 9), at(2026, 4, 30, 9)):
        seen.append(periods(stripe_client, sub.id))
        advance(stripe_client, to=month_end)
    seen.append(periods(stripe_client, sub.id))
    assert seen == [(at(2026, 1, 31, 9), at(2026, 2, 28, 9)), (at(2026, 2, 28, 9), at(2026, 3, 31, 9)),
                    (at(2026, 3, 31, 9), at(2026, 4, 30, 9)), (at(2026, 4, 30, 9), at(2026, 5, 31, 9))]


@pytest.mark.parametrize(("interval", "count", "ends"), [
    ("year", 1, [at(2027, 1, 1), at(2028, 1, 1)]),
    ("month", 3, [at(2026, 4, 1), at(2026, 7, 1)]),
    ("week", 2, [START + 14 * DAY, START + 28 * DAY]),
])
def test_yearly_quarterly_and_weekly_cycles(stripe_client, interval, count, ends):
    price = make_price(stripe_client, 120000, interval=interval, count=count)
    sub = subscribe(stripe_client, make_customer(stripe_client), price)
    assert periods(stripe_client, sub.id)[1] == ends[0]
    advance(stripe_client, to=ends[0])
    assert periods(stripe_client, sub.id) == (ends[0], ends[1])
    invoices = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [(i.billing_reason, i.amount_paid) for i in invoices] == [("subscription_cycle", 150000),
                                                                   ("subscription_create", 150000)]


def test_a_declined_renewal_is_retried_and_recovers_when_the_customer_pays(stripe_client, premium):
    customer = make_customer(stripe_client)
    subscribe(stripe_client, customer, premium)
    set_default_card(stripe_client, customer.id, "pm_card_chargeCustomerFail")
    tail = EventTail(stripe_client)

    advance(stripe_client, to=at(2026, 2, 1))
    events = tail.read()
    # The renewal fails: its invoice stays open with a retry planned, the subscription turns past_due.
    assert types(events) == [*RENEWAL, *DECLINED, "customer.subscription.updated"]
    failed = events[-2].data.object
    assert (failed.attempt_count, failed.next_payment_attempt, failed.status) == (1, at(2026, 2, 4), "open")
    assert previous(events[-1]) == {"status": "active"}

    advance(stripe_client, to=at(2026, 2, 6))
    retry = tail.read()
    # The retry 3 days later declines again: attempt 2, the next one 5 days on. Still past_due: no update.
    assert types(retry) == DECLINED
    assert single_instant(retry) == at(2026, 2, 4) and retry[0].request.id is None
    assert (retry[-1].data.object.attempt_count, retry[-1].data.object.next_payment_attempt) == (2, at(2026, 2, 9))

    set_default_card(stripe_client, customer.id, "pm_card_visa")
    tail.read()
    stripe_client.v1.invoices.pay(failed.id)
    recovered = tail.read()
    assert types(recovered) == [*PAID, "customer.subscription.updated"]
    assert previous(recovered[-1]) == {"status": "past_due"}

    advance(stripe_client, to=at(2026, 2, 20))
    assert tail.read() == []  # a paid invoice is not retried
    invoice = stripe_client.v1.invoices.retrieve(failed.id)
    assert (invoice.status, invoice.attempt_count, invoice.next_payment_attempt) == ("paid", 3, None)
    assert len(stripe_client.v1.charges.list(params={"customer": customer.id}).data) == 4


def test_when_the_last_retry_fails_the_subscription_is_canceled(stripe_client, premium):
    customer = make_customer(stripe_client)
    sub = subscribe(stripe_client, customer, premium)
    set_default_card(stripe_client, customer.id, "pm_card_chargeCustomerFail")
    advance(stripe_client, to=at(2026, 2, 15))
    tail = EventTail(stripe_client)

    advance(stripe_client, to=at(2026, 2, 16))

    events = tail.read()
    # The fourth attempt (1, 4, 9, 16 February) is the last: no retry left, the subscription ends.
    assert types(events) == [*DECLINED, "customer.subscription.deleted"]
    assert single_instant(events) == at(2026, 2, 16)
    invoice, ended = events[1].data.object, events[2].data.object
    assert (invoice.attempt_count, invoice.next_payment_attempt, invoice.status) == (4, None, "open")
    assert (ended.status, ended.ended_at, ended.cancellation_details.reason) == (
        "canceled", at(2026, 2, 16), "payment_failed")
    advance(stripe_client, to=at(2026, 4, 1))
    assert tail.read() == []  # no more retries, no more renewals
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "canceled"


def test_dunning_can_end_in_unpaid_where_invoices_are_no_longer_collected(stripe_client, sandbox, premium):
    sandbox.settings.subscription_status_after_retries = "unpaid"
    customer = make_customer(stripe_client)
    sub = subscribe(stripe_client, customer, premium)
    set_default_card(stripe_client, customer.id, "pm_card_chargeCustomerFail")
    advance(stripe_client, to=at(2026, 2, 15))
    tail = EventTail(stripe_client)

    advance(stripe_client, to=at(2026, 3, 1))

    events = tail.read()
    # Last retry: past_due → unpaid. The March renewal still makes an invoice, but no charge is attempted.
    assert types(events) == [*DECLINED, "customer.subscription.updated", *RENEWAL]
    assert previous(events[2]) == {"status": "past_due"}
    march = stripe_client.v1.invoices.retrieve(events[-1].data.object.id)
    assert (march.status, march.attempt_count, march.next_payment_attempt) == ("open", 0, None)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "unpaid"


def test_a_subscription_set_to_cancel_ends_at_its_period_end(stripe_client, premium):
    sub = subscribe(stripe_client, make_customer(stripe_client), premium)
    stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    tail = EventTail(stripe_client)

    advance(stripe_client, to=at(2026, 3, 1))

    events = tail.read()
    assert types(events) == ["customer.subscription.deleted"]  # no renewal invoice
    ended = events[0].data.object
    assert (ended.status, ended.ended_at, ended.canceled_at, ended.cancellation_details.reason) == (
        "canceled", at(2026, 2, 1), START, "cancellation_requested")
    assert events[0].created == at(2026, 2, 1) and events[0].request.id is None


def test_an_unpaid_first_invoice_expires_the_subscription_after_23_hours(stripe_client, premium):
    sub = subscribe(stripe_client, make_customer(stripe_client, card="pm_card_chargeCustomerFail"), premium)
    tail = EventTail(stripe_client)

    advance(stripe_client, days=2)

    events = tail.read()
    assert types(events) == ["invoice.voided", "customer.subscription.updated"]
    assert single_instant(events) == START + 23 * 3600
    assert previous(events[1]) == {"status": "incomplete", "ended_at": None, "canceled_at": None}
    assert stripe_client.v1.invoices.retrieve(sub.latest_invoice).status == "void"


def test_advance_to_runs_due_work_in_time_order_across_subscriptions(stripe_client, sandbox, premium):
    early = subscribe(stripe_client, make_customer(stripe_client), premium)
    advance(stripe_client, to=at(2026, 1, 15))
    late = subscribe(stripe_client, make_customer(stripe_client), premium)
    logged = len(sandbox.events.events)

    advance_to(sandbox, at(2026, 3, 20))  # called directly, as the CLI and scenarios may

    # Read the log itself: events.list stops at 30 days back, and February is further than that.
    events = sandbox.events.events[logged:]
    renewals = [(event["created"], event["data"]["object"]["id"]) for event in events
                if event["type"] == "customer.subscription.updated"]
    assert renewals == [(at(2026, 2, 1), early.id), (at(2026, 2, 15), late.id), (at(2026, 3, 1), early.id),
                        (at(2026, 3, 15), late.id)]
    assert [event["created"] for event in events] == sorted(event["created"] for event in events)
    assert {event["request"]["id"] for event in events} == {None}
    assert sandbox.now() == at(2026, 3, 20)
