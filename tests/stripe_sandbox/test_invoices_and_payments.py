"""Invoices (lines, VAT, discounts, credit balance, states), invoice payments and charges through the SDK."""
import pytest
import stripe

from tests.stripe_sandbox.billing_helpers import (
    EventTail,
    advance,
    at,
    make_customer,
    make_price,
    previous,
    subscribe,
    types,
)
from tests.stripe_sandbox.conftest import START


def first_invoice(client, sub):
    return client.v1.invoices.retrieve(sub.latest_invoice)


def test_a_paid_invoice_in_the_basil_shape(stripe_client, premium):
    customer = make_customer(stripe_client, name="Nordlys ApS", email="billing@nordlys.dk",
                             tax_id_data=[{"type": "eu_vat", "value": "DK12345678"}])
    sub = subscribe(stripe_client, customer, premium)
    invoice = first_invoice(stripe_client, sub)

    assert (invoice.status, invoice.billing_reason, invoice.currency, invoice.customer) == (
        "paid", "subscription_create", "eur", customer.id)
    assert invoice.number == f"{customer.invoice_prefix}-0001"
    assert (invoice.customer_name, invoice.customer_address.country) == ("Nordlys ApS", "DK")
    assert invoice.customer_tax_ids[0].to_dict() == {"type": "eu_vat", "value": "DK12345678"}
    assert invoice.parent.to_dict() == {"quote_details": None, "type": "subscription_details",
                                        "subscription_details": {"metadata": {}, "subscription": sub.id}}
    assert "subscription" not in invoice.to_dict()  # basil moved it under parent
    assert invoice.status_transitions.to_dict() == {"finalized_at": START, "marked_uncollectible_at": None,
                                                    "paid_at": START, "voided_at": None}
    assert invoice.hosted_invoice_url.endswith(invoice.id) and invoice.invoice_pdf.endswith(f"{invoice.id}/pdf")
    assert (invoice.subtotal, invoice.subtotal_excluding_tax, invoice.total_excluding_tax, invoice.total) == (
        9900, 9900, 9900, 12375)
    assert (invoice.amount_due, invoice.amount_paid, invoice.amount_remaining) == (12375, 12375, 0)
    assert (invoice.attempt_count, invoice.attempted, invoice.next_payment_attempt) == (1, True, None)
    assert (invoice.starting_balance, invoice.ending_balance) == (0, 0)

    line = invoice.lines.data[0]
    assert line.description == "1 × Premium (at EUR 99.00 / month)"
    assert line.pricing.price_details.to_dict() == {"price": premium.id, "product": premium.product}
    assert (line.pricing.type, line.pricing.unit_amount_decimal) == ("price_details", 9900)
    assert line.parent.subscription_item_details.to_dict() == {
        "invoice_item": None, "proration": False, "proration_details": {"credited_items": None},
        "subscription": sub.id, "subscription_item": sub["items"].data[0].id}
    assert (line.period.start, line.period.end) == (START, at(2026, 2, 1))
    tax = line.taxes[0]
    assert (tax.amount, tax.taxable_amount, tax.tax_behavior, tax.type) == (2475, 9900, "exclusive",
                                                                           "tax_rate_details")
    rate = stripe_client.v1.tax_rates.retrieve(tax.tax_rate_details.tax_rate)
    assert (rate.country, rate.percentage, rate.inclusive) == ("DK", 25.0, False)
    assert [t.amount for t in invoice.total_taxes] == [2475]
    assert [li.id for li in stripe_client.v1.invoices.line_items.list(invoice.id).data] == [line.id]


def test_tax_inclusive_prices_and_customers_without_vat(stripe_client):
    gross = make_price(stripe_client, 11900, tax_behavior="inclusive")
    german = subscribe(stripe_client, make_customer(stripe_client, country="DE"), gross)
    american = subscribe(stripe_client, make_customer(stripe_client, country="US"), gross)

    de = first_invoice(stripe_client, german)
    # 19 % contained in 11900: 1900, the total does not grow.
    assert (de.subtotal, de.subtotal_excluding_tax, de.total_excluding_tax, de.total) == (11900, 10000, 10000, 11900)
    assert [(t.amount, t.tax_behavior, t.taxable_amount) for t in de.total_taxes] == [(1900, "inclusive", 10000)]
    us = first_invoice(stripe_client, american)
    assert (us.total, us.total_taxes, us.lines.data[0].taxes) == (11900, [], [])


def test_the_customer_credit_balance_is_spent_first(stripe_client, premium):
    customer = make_customer(stripe_client, balance=-5000)
    tail = EventTail(stripe_client)

    sub = subscribe(stripe_client, customer, premium)

    events = tail.read()
    # Finalizing applies the credit (customer.updated, balance), then the card pays the rest.
    assert types(events) == ["customer.subscription.created", "invoice.created", "invoice.finalized",
                             "customer.updated", "charge.succeeded", "invoice_payment.paid", "invoice.paid",
                             "invoice.payment_succeeded"]
    assert previous(events[3]) == {"balance": -5000}
    invoice = first_invoice(stripe_client, sub)
    assert (invoice.total, invoice.starting_balance, invoice.ending_balance, invoice.amount_due,
            invoice.amount_paid) == (12375, -5000, 0, 7375, 7375)
    assert stripe_client.v1.charges.list(params={"customer": customer.id}).data[0].amount == 7375
    assert stripe_client.v1.customers.retrieve(customer.id).balance == 0


def test_enough_credit_pays_the_invoice_without_a_charge(stripe_client, premium):
    customer = make_customer(stripe_client, balance=-20000)
    tail = EventTail(stripe_client)

    sub = subscribe(stripe_client, customer, premium)

    assert types(tail.read()) == ["customer.subscription.created", "invoice.created", "invoice.finalized",
                                  "customer.updated", "invoice.paid", "invoice.payment_succeeded"]
    invoice = first_invoice(stripe_client, sub)
    assert (invoice.amount_due, invoice.ending_balance, invoice.status) == (0, -7625, "paid")
    assert stripe_client.v1.invoice_payments.list(params={"invoice": invoice.id}).data == []
    assert (sub.status, stripe_client.v1.customers.retrieve(customer.id).balance) == ("active", -7625)


def test_invoice_payments_and_charges(stripe_client, premium):
    customer = make_customer(stripe_client)
    sub = subscribe(stripe_client, customer, premium)
    invoice = first_invoice(stripe_client, sub)

    payments = stripe_client.v1.invoice_payments.list(params={"invoice": invoice.id}).data
    assert len(payments) == 1
    payment = stripe_client.v1.invoice_payments.retrieve(payments[0].id)
    assert (payment.invoice, payment.is_default, payment.amount_requested, payment.amount_paid, payment.status) == (
        invoice.id, True, 12375, 12375, "paid")
    assert payment.status_transitions.paid_at == START

    charge = stripe_client.v1.charges.retrieve(payment.payment.charge)
    assert (charge.amount, charge.amount_captured, charge.status, charge.paid, charge.captured) == (
        12375, 12375, "succeeded", True, True)
    assert (charge.customer, charge.currency, charge.description) == (customer.id, "eur", "Subscription creation")
    assert (charge.payment_method_details.type, charge.payment_method_details.card.last4) == ("card", "4242")
    assert (charge.outcome.type, charge.outcome.network_status) == ("authorized", "approved_by_network")
    assert charge.receipt_url.endswith(charge.id)
    assert (charge.amount_refunded, charge.refunded, charge.refunds.data) == (0, False, [])
    assert "invoice" not in charge.to_dict() and charge.payment_intent is None  # basil: charges name no invoice
    assert [c.id for c in stripe_client.v1.charges.list(params={"customer": customer.id}).auto_paging_iter()] == [
        charge.id]


def test_declined_charges_say_why(stripe_client, premium):
    sub = subscribe(stripe_client, make_customer(stripe_client, card="pm_card_chargeCustomerFail"), premium)
    payment = stripe_client.v1.invoice_payments.list(params={"invoice": sub.latest_invoice}).data[0]
    charge = stripe_client.v1.charges.retrieve(payment.payment.charge)

    assert (payment.status, payment.amount_paid) == ("open", None)
    assert (charge.status, charge.paid, charge.amount_captured, charge.failure_code) == (
        "failed", False, 0, "card_declined")
    assert (charge.outcome.type, charge.outcome.reason) == ("issuer_declined", "generic_decline")


def test_list_invoices_by_customer_subscription_and_status(stripe_client, premium):
    good, bad = make_customer(stripe_client), make_customer(stripe_client, card="pm_card_chargeCustomerFail")
    paid_sub, open_sub = subscribe(stripe_client, good, premium), subscribe(stripe_client, bad, premium)

    def listed(**params):
        return [i.id for i in stripe_client.v1.invoices.list(params={"limit": 1, **params}).auto_paging_iter()]

    assert listed() == [open_sub.latest_invoice, paid_sub.latest_invoice]
    assert listed(customer=good.id) == listed(subscription=paid_sub.id) == listed(status="paid") == [
        paid_sub.latest_invoice]
    assert listed(status="open") == [open_sub.latest_invoice]


def test_mark_uncollectible_then_void(stripe_client, premium):
    sub = subscribe(stripe_client, make_customer(stripe_client, card="pm_card_chargeCustomerFail"), premium)
    tail = EventTail(stripe_client)

    written_off = stripe_client.v1.invoices.mark_uncollectible(sub.latest_invoice)
    voided = stripe_client.v1.invoices.void_invoice(sub.latest_invoice)

    assert types(tail.read()) == ["invoice.marked_uncollectible", "invoice.voided"]
    assert (written_off.status, written_off.status_transitions.marked_uncollectible_at) == ("uncollectible", START)
    assert (voided.status, voided.status_transitions.voided_at) == ("void", START)
    assert stripe_client.v1.invoice_payments.list(params={"invoice": voided.id}).data[0].status == "canceled"
    with pytest.raises(stripe.InvalidRequestError, match="status is open or uncollectible"):
        stripe_client.v1.invoices.pay(voided.id)


def test_paying_twice_or_with_a_declining_card_is_refused_without_trace(stripe_client, premium):
    customer = make_customer(stripe_client)
    paid = first_invoice(stripe_client, subscribe(stripe_client, customer, premium))
    with pytest.raises(stripe.InvalidRequestError, match="already paid"):
        stripe_client.v1.invoices.pay(paid.id)
    with pytest.raises(stripe.InvalidRequestError, match="status is open or uncollectible"):
        stripe_client.v1.invoices.void_invoice(paid.id)

    failing = make_customer(stripe_client, card="pm_card_chargeCustomerFail")
    unpaid = first_invoice(stripe_client, subscribe(stripe_client, failing, premium))
    tail = EventTail(stripe_client)
    with pytest.raises(stripe.CardError) as declined:
        stripe_client.v1.invoices.pay(unpaid.id)
    assert declined.value.code == "card_declined"
    # A failed request changes nothing here (Stripe would keep the failed attempt).
    assert tail.read() == []
    assert stripe_client.v1.invoices.retrieve(unpaid.id).attempt_count == 1


def test_paying_with_a_given_card_of_the_customer(stripe_client, premium):
    customer = make_customer(stripe_client, card="pm_card_chargeCustomerFail")
    invoice = first_invoice(stripe_client, subscribe(stripe_client, customer, premium))
    spare = stripe_client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": customer.id})
    stranger = stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}})

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.invoices.pay(invoice.id, params={"payment_method": stranger.id})
    assert refused.value.param == "payment_method"
    paid = stripe_client.v1.invoices.pay(invoice.id, params={"payment_method": spare.id})

    assert paid.status == "paid"
    charge = stripe_client.v1.charges.list(params={"customer": customer.id, "limit": 1}).data[0]
    assert (charge.payment_method, charge.payment_method_details.card.brand) == (spare.id, "mastercard")


def test_a_forever_coupon_reduces_every_invoice_and_a_once_coupon_only_the_first(stripe_client, premium):
    stripe_client.v1.coupons.create(params={"id": "LOYAL20", "percent_off": "20", "duration": "forever"})
    stripe_client.v1.coupons.create(params={"id": "WELCOME5", "amount_off": 500, "currency": "eur",
                                            "duration": "once"})
    first, second = make_customer(stripe_client), make_customer(stripe_client)
    tail = EventTail(stripe_client)
    loyal = subscribe(stripe_client, first, premium, discounts=[{"coupon": "LOYAL20"}])
    welcome = subscribe(stripe_client, second, premium, coupon="WELCOME5")

    created = tail.read()
    assert types(created)[:3] == ["customer.subscription.created", "customer.discount.created", "invoice.created"]
    discount = stripe_client.v1.subscriptions.retrieve(loyal.id, params={"expand": ["discounts"]}).discounts[0]
    assert (discount.source.coupon, discount.source.type, discount.subscription, discount.end) == (
        "LOYAL20", "coupon", loyal.id, None)

    advance(stripe_client, to=at(2026, 3, 1))

    def discounts_and_totals(sub):
        invoices = stripe_client.v1.invoices.list(params={"subscription": sub.id}).data[::-1]
        return [(sum(d.amount for d in i.total_discount_amounts), i.total) for i in invoices]

    # 20 % of 9900 is 1980 every month; VAT on what is left: 7920 × 1.25.
    assert discounts_and_totals(loyal) == [(1980, 9900)] * 3
    # 500 off the first invoice only: (9900 − 500) × 1.25, then the full price.
    assert discounts_and_totals(welcome) == [(500, 11750), (0, 12375), (0, 12375)]
    ended = [e for e in tail.read() if e.type == "customer.discount.deleted"]
    assert [(e.created, e.data.object.source.coupon) for e in ended] == [(at(2026, 2, 1), "WELCOME5")]
    assert stripe_client.v1.subscriptions.retrieve(welcome.id).discounts == []
    assert stripe_client.v1.coupons.retrieve("LOYAL20").times_redeemed == 1


def test_fixed_amount_forever_coupons_no_longer_apply_to_subscriptions(stripe_client, premium):
    stripe_client.v1.coupons.create(params={"id": "FLAT", "amount_off": 500, "currency": "eur",
                                            "duration": "forever"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        subscribe(stripe_client, make_customer(stripe_client), premium, discounts=[{"coupon": "FLAT"}])
    assert refused.value.param == "discounts[0][coupon]"


def test_invoice_payments_are_found_by_the_payment_intent_that_paid_them(stripe_client, premium):
    sub = subscribe(stripe_client, make_customer(stripe_client), premium)
    by_intent = {"payment": {"type": "payment_intent", "payment_intent": "pi_123"}}
    # The sandbox pays by charge, without PaymentIntents: no invoice payment is of type payment_intent.
    assert stripe_client.v1.invoice_payments.list(params=by_intent).data == []
    assert stripe_client.v1.invoice_payments.list(params={"payment": {"type": "payment_intent"}}).data == []
    assert len(stripe_client.v1.invoice_payments.list(params={"invoice": sub.latest_invoice}).data) == 1


@pytest.mark.parametrize("payment, param", [
    ({"payment_intent": "pi_123"}, "payment[type]"),
    ({"type": "charge"}, "payment[type]"),
    ({"type": "payment_intent", "charge": "ch_123"}, "payment[charge]"),
])
def test_invoice_payments_are_not_found_by_charge(stripe_client, payment, param):
    # Stripe lists invoice payments by PaymentIntent or PaymentRecord only.
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.invoice_payments.list(params={"payment": payment})
    assert refused.value.param == param
