"""Customers, tax ids, products, prices, coupons and payment methods through the real SDK."""
import pytest
import stripe

from tests.stripe_sandbox.conftest import START


def event_types(client, **filters):
    """Return the types of all events, oldest first."""
    return [event.type for event in client.v1.events.list(params={"limit": 100, **filters}).auto_paging_iter()][::-1]


def test_customer_round_trip_with_address_tax_id_and_metadata(stripe_client):
    customer = stripe_client.v1.customers.create(params={
        "name": "Nordlys ApS", "email": "billing@nordlys.dk", "metadata": {"tenant_id": "ten_42"},
        "address": {"line1": "Nørregade 1", "postal_code": "1165", "city": "København", "country": "DK"},
        "tax_id_data": [{"type": "eu_vat", "value": "DK12345678"}],
    })
    assert customer.id.startswith("cus_") and customer.created == START
    assert customer.address.country == "DK" and customer.address.line2 is None
    assert customer.metadata.to_dict() == {"tenant_id": "ten_42"}
    tax_ids = stripe_client.v1.customers.tax_ids.list(customer.id)
    assert [(t.type, t.value, t.country) for t in tax_ids.data] == [("eu_vat", "DK12345678", "DK")]
    assert stripe_client.v1.customers.retrieve(customer.id).email == "billing@nordlys.dk"
    assert event_types(stripe_client) == ["customer.created", "customer.tax_id.created"]


def test_customer_update_emits_previous_attributes(stripe_client):
    customer = stripe_client.v1.customers.create(params={"name": "Old", "metadata": {"a": "1", "b": "2"}})
    stripe_client.v1.customers.update(customer.id, params={"name": "New", "metadata": {"b": "", "c": "3"},
                                                           "address": {"country": "DE"}})
    updated = stripe_client.v1.customers.list(params={"limit": 1}).data[0]
    assert updated.metadata.to_dict() == {"a": "1", "c": "3"}
    event = stripe_client.v1.events.list(params={"type": "customer.updated"}).data[0]
    assert event.data.object.name == "New"
    assert event.data.previous_attributes.to_dict() == {"name": "Old", "metadata": {"b": "2", "c": None},
                                                        "address": None}
    assert event.request.id.startswith("req_")


def test_an_unchanged_update_emits_nothing(stripe_client):
    customer = stripe_client.v1.customers.create(params={"name": "Same"})
    stripe_client.v1.customers.update(customer.id, params={"name": "Same"})
    assert event_types(stripe_client) == ["customer.created"]


def test_deleted_customer_retrieves_as_a_stub_and_leaves_the_list(stripe_client):
    customer = stripe_client.v1.customers.create(params={"email": "gone@example.com"})
    assert stripe_client.v1.customers.delete(customer.id).deleted is True
    assert stripe_client.v1.customers.retrieve(customer.id).to_dict() == {
        "id": customer.id, "object": "customer", "deleted": True}
    assert list(stripe_client.v1.customers.list().auto_paging_iter()) == []
    deleted_event = stripe_client.v1.events.list(params={"type": "customer.deleted"}).data[0]
    assert deleted_event.data.object.email == "gone@example.com"


def test_customer_list_pages_and_filters(stripe_client):
    ids = [stripe_client.v1.customers.create(params={"email": f"c{i}@example.com"}).id for i in range(7)]
    page = stripe_client.v1.customers.list(params={"limit": 3})
    assert [c.id for c in page.data] == ids[::-1][:3] and page.has_more
    assert [c.id for c in page.auto_paging_iter()] == ids[::-1]
    assert [c.id for c in stripe_client.v1.customers.list(params={"email": "c4@example.com"}).data] == [ids[4]]


def test_products_and_monthly_and_yearly_prices(stripe_client):
    product = stripe_client.v1.products.create(params={"name": "Premium", "metadata": {"plan": "premium"}})
    monthly = stripe_client.v1.prices.create(params={
        "product": product.id, "unit_amount": 9900, "currency": "eur", "recurring": {"interval": "month"},
        "tax_behavior": "exclusive", "metadata": {"plan": "premium"}})
    yearly = stripe_client.v1.prices.create(params={
        "product": product.id, "unit_amount": 99000, "currency": "EUR",
        "recurring": {"interval": "year", "interval_count": "1"}, "tax_behavior": "inclusive"})
    assert (monthly.recurring.interval, monthly.tax_behavior, monthly.unit_amount) == ("month", "exclusive", 9900)
    assert (yearly.currency, yearly.recurring.interval) == ("eur", "year")
    listed = stripe_client.v1.prices.list(params={"product": product.id, "expand": ["data.product"]})
    assert [p.id for p in listed.data] == [yearly.id, monthly.id]
    assert listed.data[0].product.metadata.plan == "premium"
    stripe_client.v1.prices.update(monthly.id, params={"active": "false"})
    assert [p.id for p in stripe_client.v1.prices.list(params={"active": "true"}).data] == [yearly.id]


def test_price_validation_errors(stripe_client):
    product = stripe_client.v1.products.create(params={"name": "Standard"})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.prices.create(params={"product": product.id, "currency": "eur"})
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "unit_amount")
    with pytest.raises(stripe.InvalidRequestError) as interval:
        stripe_client.v1.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 100,
                                               "recurring": {"interval": "fortnight"}})
    assert interval.value.param == "recurring[interval]"
    with pytest.raises(stripe.InvalidRequestError) as integer:
        stripe_client.v1.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": "ten"})
    assert integer.value.code == "parameter_invalid_integer"


def test_coupons_forever_once_and_repeating(stripe_client):
    forever = stripe_client.v1.coupons.create(params={"percent_off": "20", "duration": "forever", "id": "LOYAL20"})
    once = stripe_client.v1.coupons.create(params={"amount_off": 500, "currency": "eur", "duration": "once"})
    assert (forever.id, forever.percent_off, forever.duration) == ("LOYAL20", 20.0, "forever")
    assert (once.amount_off, once.currency, once.percent_off) == (500, "eur", None)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.coupons.create(params={"percent_off": "10", "duration": "repeating"})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.coupons.create(params={"percent_off": "10", "amount_off": 100, "currency": "eur"})
    assert stripe_client.v1.coupons.retrieve("LOYAL20").valid is True


def test_payment_method_attach_update_detach_events(stripe_client):
    customer = stripe_client.v1.customers.create(params={"email": "card@example.com"})
    method = stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_mastercard"}})
    assert (method.card.brand, method.card.last4, method.customer) == ("mastercard", "4444", None)
    stripe_client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    stripe_client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": method.id}})
    stripe_client.v1.payment_methods.update(method.id, params={"card": {"exp_month": 3, "exp_year": 2031},
                                                               "billing_details": {"name": "Ada"}})
    stripe_client.v1.payment_methods.detach(method.id)
    assert event_types(stripe_client) == [
        "customer.created", "payment_method.attached", "customer.updated", "payment_method.updated",
        "customer.updated", "payment_method.detached"]
    updated = stripe_client.v1.events.list(params={"type": "payment_method.updated"}).data[0]
    assert updated.data.previous_attributes.to_dict() == {
        "card": {"exp_month": 12, "exp_year": 2034}, "billing_details": {"name": None}}
    assert stripe_client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method is None


def test_declining_card_and_test_payment_method_names(stripe_client):
    customer = stripe_client.v1.customers.create(params={})
    declined = stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_chargeDeclined"}})
    with pytest.raises(stripe.CardError) as error:
        stripe_client.v1.payment_methods.attach(declined.id, params={"customer": customer.id})
    assert error.value.code == "card_declined" and error.value.http_status == 402
    visa = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert (visa.card.last4, visa.customer) == ("4242", customer.id)
    listed = stripe_client.v1.customers.payment_methods.list(customer.id)
    assert [m.id for m in listed.data] == [visa.id]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_unknown"}})


def test_customer_with_default_payment_method_on_create(stripe_client):
    method = stripe_client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}})
    customer = stripe_client.v1.customers.create(params={
        "payment_method": method.id, "invoice_settings": {"default_payment_method": method.id}})
    assert customer.invoice_settings.default_payment_method == method.id
    expanded = stripe_client.v1.customers.retrieve(customer.id, params={"expand": ["invoice_settings.default_payment_method"]})
    assert expanded.invoice_settings.default_payment_method.card.last4 == "4242"
