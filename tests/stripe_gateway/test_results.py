"""Typed results from the sandbox over HTTP: customers, prices and their plans, the catalog, events, raw reads."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backoffice.stripe_gateway import (
    CustomerInfo,
    InProcessTokenBucket,
    PriceInfo,
    StripeGateway,
    StripeNotFound,
    StripeRequestFailed,
)
from tests.stripe_sandbox.billing_helpers import make_customer, subscribe
from tests.stripe_sandbox.conftest import START


def make_price(client, amount, *, product_plan=None, price_plan=None, currency="eur", interval="month", count=1,
               tax_behavior="exclusive", active=True):
    product = client.v1.products.create(params={"name": "Plan", "metadata": {"plan": product_plan} if product_plan else {}})
    return client.v1.prices.create(params={
        "product": product.id, "unit_amount": amount, "currency": currency, "tax_behavior": tax_behavior,
        "active": active, "recurring": {"interval": interval, "interval_count": count},
        "metadata": {"plan": price_plan} if price_plan else {}})


def test_customer_is_typed(gateway, stripe_client):
    created = stripe_client.v1.customers.create(params={
        "email": "owner@acme.test", "name": "Acme ApS", "metadata": {"tenant_id": "ten_acme"}})
    info = gateway.customer(created.id)
    assert info == CustomerInfo(id=created.id, deleted=False, tenant_id="ten_acme", email="owner@acme.test",
                                name="Acme ApS", currency=None, created=datetime.fromtimestamp(START, UTC), raw={})
    assert info.created.tzinfo is UTC
    assert info.raw["metadata"] == {"tenant_id": "ten_acme"} and info.raw["object"] == "customer"
    json.dumps(info.raw)  # plain data, ready for a jsonb column


def test_customer_currency_is_upper_case(scripted_stripe):
    # The sandbox never sets a customer's currency; Stripe does on the first subscription, in lower case.
    gateway = StripeGateway("sk_test_scripted", scripted_stripe.url, InProcessTokenBucket(100))
    info = gateway.customer("cus_scripted")
    assert (info.currency, info.tenant_id, info.email) == ("EUR", "ten_1", "ops@example.com")
    assert scripted_stripe.paths == ["/v1/customers/cus_scripted"]


def test_deleted_customer(gateway, stripe_client):
    created = stripe_client.v1.customers.create(params={"metadata": {"tenant_id": "ten_gone"}})
    stripe_client.v1.customers.delete(created.id)
    info = gateway.customer(created.id)
    assert (info.id, info.deleted, info.tenant_id, info.created) == (created.id, True, None, None)


def test_missing_objects_raise_not_found(gateway):
    with pytest.raises(StripeNotFound, match="No such customer: 'cus_nothing'") as missing:
        gateway.customer("cus_nothing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    assert missing.value.request_id and missing.value.request_id.startswith("req_")
    for read, object_id in ((gateway.price, "price_nothing"), (gateway.subscription, "sub_nothing"),
                            (gateway.invoice, "in_nothing"), (gateway.charge, "ch_nothing")):
        with pytest.raises(StripeNotFound):
            read(object_id)
    assert gateway.calls == 5


def test_other_refusals_keep_stripes_message(gateway, sandbox_server):
    with pytest.raises(StripeRequestFailed) as refused:
        gateway.events_page(limit=500)
    assert type(refused.value) is StripeRequestFailed
    assert (refused.value.http_status, refused.value.param, refused.value.message) == (
        400, "limit", "This value must be less than or equal to 100.")
    assert gateway.calls == 1  # a refusal is not retried
    wrong_key = StripeGateway("sk_test_wrong_key", sandbox_server.url, InProcessTokenBucket(100))
    with pytest.raises(StripeRequestFailed, match="Invalid API Key provided") as unauthorized:
        wrong_key.customer("cus_any")
    assert unauthorized.value.http_status == 401 and wrong_key.calls == 1


def test_price_plan_from_price_metadata(gateway, stripe_client):
    price = make_price(stripe_client, 9900, product_plan="standard", price_plan="Premium")
    assert gateway.price(price.id) == PriceInfo(
        id=price.id, product_id=price.product, plan="premium", unit_amount=Decimal("99"), currency="EUR",
        interval="month", interval_count=1, tax_behavior="exclusive", active=True)


def test_price_plan_from_product_metadata(gateway, stripe_client):
    price = make_price(stripe_client, 119900, product_plan="standard", interval="year", tax_behavior="inclusive")
    info = gateway.price(price.id)
    assert (info.plan, info.unit_amount, info.interval, info.tax_behavior) == (
        "standard", Decimal("1199"), "year", "inclusive")


def test_price_without_plan(gateway, stripe_client):
    price = make_price(stripe_client, 1250, interval="week", count=2)
    info = gateway.price(price.id)
    assert (info.plan, info.unit_amount, info.interval, info.interval_count) == (None, Decimal("12.5"), "week", 2)


def test_zero_decimal_currency_is_not_divided(gateway, stripe_client):
    info = gateway.price(make_price(stripe_client, 5000, currency="jpy").id)
    assert (info.unit_amount, info.currency) == (Decimal("5000"), "JPY")


def test_prices_pages_through_the_whole_catalog(gateway, stripe_client):
    plans = {}
    for n in range(103):  # more than one page of 100
        price = make_price(stripe_client, 100 + n, product_plan="standard" if n % 2 else None,
                           price_plan="premium" if n % 3 == 0 else None, active=n % 5 != 0)
        plans[price.id] = "premium" if n % 3 == 0 else "standard" if n % 2 else None
    before = gateway.calls
    listed = list(gateway.prices())
    assert gateway.calls - before == 2
    assert {p.id: p.plan for p in listed} == plans
    assert sum(not p.active for p in listed) == 21  # inactive prices are listed too
    assert all(isinstance(p, PriceInfo) and p.currency == "EUR" for p in listed)


def test_events_page_returns_plain_dicts_with_cursors(gateway, stripe_client):
    for n in range(5):
        stripe_client.v1.customers.create(params={"name": f"Customer {n}"})
    first = gateway.events_page(limit=2, created_gte=START)
    assert first.has_more is True and len(first.events) == 2
    assert all(type(e) is dict and type(e["data"]["object"]) is dict for e in first.events)
    json.dumps(first.events)
    rest = gateway.events_page(starting_after=first.events[-1]["id"])
    assert rest.has_more is False and len(rest.events) == 3
    newer = gateway.events_page(ending_before=rest.events[0]["id"])
    assert [e["id"] for e in newer.events] == [e["id"] for e in first.events]
    assert gateway.events_page(created_gte=START + 1).events == []


def test_untyped_reads_are_plain_dicts(gateway, stripe_client, premium, sandbox):
    customer = make_customer(stripe_client)
    subscription = subscribe(stripe_client, customer, premium)
    assert gateway.subscription(subscription.id)["items"]["data"][0]["price"]["id"] == premium.id
    invoice = gateway.invoice(subscription.latest_invoice)
    assert (invoice["customer"], invoice["status"]) == (customer.id, "paid")
    charge_id = sandbox.store.all("charge")[-1]["id"]
    charge = gateway.charge(charge_id)
    assert (charge["customer"], charge["amount"]) == (customer.id, invoice["amount_paid"])
    json.dumps([gateway.subscription(subscription.id), invoice, charge])


def test_a_coupon_is_read_by_id(gateway, stripe_client):
    coupon = stripe_client.v1.coupons.create(params={"percent_off": 20, "duration": "forever", "id": "FOREVER20"})
    read = gateway.coupon(coupon.id)
    assert (read["id"], read["duration"], read["percent_off"]) == ("FOREVER20", "forever", 20)
    with pytest.raises(StripeNotFound):
        gateway.coupon("NO_SUCH_COUPON")


def test_a_charge_without_payment_intent_finds_its_invoice_among_its_customers_invoice_payments(
        gateway, stripe_client, premium):
    customer = make_customer(stripe_client)
    first = subscribe(stripe_client, customer, premium)
    payment = stripe_client.v1.invoice_payments.list(params={"invoice": first.latest_invoice}).data[0]
    assert payment.payment.type == "charge"  # the sandbox pays invoices by charge, without PaymentIntents
    assert gateway.charge_invoice(payment.payment.charge) == first.latest_invoice
    assert gateway.calls == 2  # the charge, then one page of its customer's invoices


def test_a_charge_of_a_payment_intent_finds_its_invoice_by_the_intent(scripted_stripe):
    gateway = StripeGateway("sk_test_scripted", scripted_stripe.url, InProcessTokenBucket(100))
    scripted_stripe.answer(200, {"id": "ch_1", "object": "charge", "customer": "cus_1", "payment_intent": "pi_1"})
    scripted_stripe.answer(200, {"object": "list", "url": "/v1/invoice_payments", "has_more": False, "data": [
        {"id": "inpay_1", "object": "invoice_payment", "invoice": "in_1",
         "payment": {"type": "payment_intent", "payment_intent": "pi_1"}}]})
    assert gateway.charge_invoice("ch_1") == "in_1"
    assert scripted_stripe.paths == ["/v1/charges/ch_1", "/v1/invoice_payments"]


def test_a_charge_that_paid_no_invoice(scripted_stripe):
    gateway = StripeGateway("sk_test_scripted", scripted_stripe.url, InProcessTokenBucket(100))
    scripted_stripe.answer(200, {"id": "ch_1", "object": "charge", "customer": "cus_1", "payment_intent": None})
    scripted_stripe.answer(200, {"object": "list", "url": "/v1/invoices", "has_more": False, "data": []})
    assert gateway.charge_invoice("ch_1") is None
    assert scripted_stripe.paths == ["/v1/charges/ch_1", "/v1/invoices"]
