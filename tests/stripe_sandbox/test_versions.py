"""Events rendered in other API versions: the basil shape the sandbox keeps, and the pre-2025 shape of the
2020-03-02 envelopes in ../shared/stripe-fixtures/supabase-stripe-sync-engine/."""
import copy
from typing import Any

import pytest
import stripe

from backoffice.config import DEFAULT_STRIPE_API_VERSIONS
from backoffice.stripe_sandbox import SandboxSettings
from backoffice.stripe_sandbox.versions import BASIL, KNOWN_VERSIONS, render_event
from tests.stripe_sandbox.conftest import create_endpoint

OLD = "2020-03-02"
# fixtures3 resource → the supabase envelope holding the same type in the 2020-03-02 shape
ENVELOPES = {"subscription": "subscription_updated", "invoice": "invoice_paid", "charge": "charge_succeeded",
             "credit_note": "credit_note_created", "customer": "customer_updated", "price": "price_created"}
# Fields basil introduced in place of the old ones: gone from the old shape.
BASIL_ONLY = {"subscription": set(), "invoice": {"parent", "total_taxes", "amount_overpaid"},
              "charge": set(), "credit_note": {"refunds", "total_taxes"}, "customer": set(), "price": set()}


class DictLookup:
    """Related objects by id, for rendering without a running sandbox."""

    def __init__(self, *objects: dict[str, Any]):
        self.objects = {obj["id"]: obj for obj in objects}

    def find(self, object_id: str) -> dict[str, Any] | None:
        return self.objects.get(object_id)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects.values() if obj["object"] == kind]


def basil_event(obj: dict[str, Any], event_type: str = "object.updated",
                previous: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous is not None:
        data["previous_attributes"] = previous
    return {"id": "evt_1", "object": "event", "api_version": BASIL, "created": 1767225600, "data": data,
            "livemode": False, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
            "type": event_type}


@pytest.mark.parametrize("resource", sorted(ENVELOPES))
def test_fixture_objects_render_with_the_old_envelopes_keys(stripe_samples, resource):
    old = stripe_samples.envelope(ENVELOPES[resource])["data"]["object"]
    rendered = render_event(basil_event(stripe_samples.resources[resource]), OLD)
    assert rendered["api_version"] == OLD
    obj = rendered["data"]["object"]
    assert set(old) <= set(obj), f"missing: {sorted(set(old) - set(obj))}"
    assert not BASIL_ONLY[resource] & set(obj)


def test_old_subscription_takes_its_period_and_plan_from_the_item(stripe_samples):
    subscription = stripe_samples.resources["subscription"]
    item = subscription["items"]["data"][0]
    rendered = render_event(basil_event(subscription), OLD)["data"]["object"]
    assert (rendered["current_period_start"], rendered["current_period_end"]) == (
        item["current_period_start"], item["current_period_end"])
    assert rendered["plan"]["id"] == item["plan"]["id"] and rendered["quantity"] == item["quantity"]
    old_item = stripe_samples.envelope("subscription_updated")["data"]["object"]["items"]["data"][0]
    assert set(old_item) <= set(rendered["items"]["data"][0])
    assert "current_period_end" not in rendered["items"]["data"][0]
    assert {"aggregate_usage", "tiers"} <= set(rendered["plan"])


def test_old_invoice_lines_carry_plan_price_proration_and_type(stripe_samples):
    price = {**stripe_samples.resources["price"], "id": "price_std"}
    invoice = copy.deepcopy(stripe_samples.resources["invoice"])
    line = invoice["lines"]["data"][0]
    line["parent"]["type"] = "subscription_item_details"
    line["parent"]["invoice_item_details"] = None
    line["pricing"] = {"type": "price_details", "price_details": {"price": "price_std", "product": price["product"]},
                       "unit_amount_decimal": "1000"}
    rendered = render_event(basil_event(invoice), OLD, DictLookup(price))["data"]["object"]
    old_line = stripe_samples.envelope("invoice_paid")["data"]["object"]["lines"]["data"][0]
    new_line = rendered["lines"]["data"][0]
    assert set(old_line) <= set(new_line) and not {"parent", "pricing", "taxes"} & set(new_line)
    assert (new_line["type"], new_line["proration"], new_line["subscription"]) == ("subscription", True, "subscription")
    assert new_line["price"]["id"] == new_line["plan"]["id"] == "price_std"
    assert rendered["subscription"] == invoice["parent"]["subscription_details"]["subscription"]


def test_payment_fields_come_back_from_the_invoice_payment():
    invoice = {"id": "in_1", "object": "invoice", "status": "paid", "parent": None, "total_taxes": [],
               "discounts": [], "lines": {"object": "list", "data": []}}
    payment = {"id": "inpay_1", "object": "invoice_payment", "invoice": "in_1", "is_default": True,
               "payment": {"type": "charge", "charge": "ch_1"}, "status": "paid"}
    charge = {"id": "ch_1", "object": "charge"}
    lookup = DictLookup(invoice, payment, charge)
    old_invoice = render_event(basil_event(invoice), OLD, lookup)["data"]["object"]
    assert (old_invoice["charge"], old_invoice["paid"], old_invoice["payment_intent"]) == ("ch_1", True, None)
    old_charge = render_event(basil_event(charge), OLD, lookup)["data"]["object"]
    assert old_charge["invoice"] == "in_1" and old_charge["refunds"]["object"] == "list"


def test_a_renewal_previous_attributes_name_the_old_top_level_period(stripe_samples):
    subscription = copy.deepcopy(stripe_samples.resources["subscription"])
    item = subscription["items"]["data"][0]
    item.update({"current_period_start": 200, "current_period_end": 300})
    old_item = {**item, "current_period_start": 100, "current_period_end": 200}
    previous = {"items": {"data": [old_item]}, "latest_invoice": "in_old"}
    rendered = render_event(basil_event(subscription, "customer.subscription.updated", previous), OLD)
    assert rendered["data"]["previous_attributes"] == {
        "current_period_start": 100, "current_period_end": 200, "latest_invoice": "in_old"}
    assert rendered["data"]["object"]["current_period_start"] == 200


def test_a_price_change_names_the_old_plan_too(stripe_samples):
    subscription = copy.deepcopy(stripe_samples.resources["subscription"])
    item = subscription["items"]["data"][0]
    old_item = copy.deepcopy(item)
    old_item["price"] = {**item["price"], "id": "price_old"}
    old_item["plan"] = {**item["plan"], "id": "price_old"}
    rendered = render_event(basil_event(subscription, "customer.subscription.updated",
                                        {"items": {"data": [old_item]}}), OLD)
    previous = rendered["data"]["previous_attributes"]
    assert previous["plan"]["id"] == "price_old"
    assert previous["items"]["data"][0]["price"]["id"] == "price_old"
    assert "current_period_start" not in previous["items"]["data"][0]


def test_within_the_basil_family_only_the_label_changes(stripe_samples):
    event = basil_event(stripe_samples.resources["invoice"])
    rendered = render_event(event, "2026-10-28.endive")
    assert rendered == {**event, "api_version": "2026-10-28.endive"}


def test_unknown_versions_are_refused():
    with pytest.raises(ValueError, match="2019-12-03"):
        render_event(basil_event({"id": "cus_1", "object": "customer"}), "2019-12-03")
    with pytest.raises(ValueError, match="basil"):
        SandboxSettings(currency="EUR", api_version="2024-06-20")


def test_the_sandbox_renders_every_version_backoffice_accepts():
    assert set(DEFAULT_STRIPE_API_VERSIONS) <= set(KNOWN_VERSIONS)


# --- through a running sandbox ---------------------------------------------------------------------------


def subscribe_and_pay(client) -> None:
    """Subscribe a Danish customer with a card: subscription, invoice, charge and payment events."""
    customer = client.v1.customers.create(params={"name": "Nordlys ApS", "address": {"country": "DK"}})
    method = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": method.id}})
    price = client.v1.prices.create(params={"currency": "eur", "unit_amount": 4900, "recurring": {"interval": "month"},
                                            "product_data": {"name": "Standard"}})
    client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}]})


@pytest.mark.parametrize("event_type, envelope", [
    ("customer.subscription.created", "subscription_created"),
    ("invoice.paid", "invoice_paid"),
    ("charge.succeeded", "charge_succeeded"),
    ("customer.updated", "customer_updated"),
])
def test_webhooks_for_an_old_endpoint_have_the_old_envelopes_keys(
        stripe_client, sandbox, webhook_receiver, stripe_samples, event_type, envelope):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url, (event_type,), api_version=OLD)
    subscribe_and_pay(stripe_client)
    sandbox.webhooks.wait_idle()
    received = webhook_receiver.received
    assert received, f"no {event_type} was delivered"
    event = stripe.Webhook.construct_event(received[0].body, received[0].headers["Stripe-Signature"], endpoint.secret)
    old = stripe_samples.envelope(envelope)
    assert set(old) == set(event.to_dict()) and event.api_version == OLD
    assert set(old["data"]["object"]) <= set(event.data.object.to_dict())
    if event_type == "invoice.paid":
        invoice = event.data.object
        assert invoice.paid is True and invoice.charge.startswith("ch_") and invoice.subscription.startswith("sub_")
        assert {"plan", "price", "proration", "subscription", "type"} <= set(invoice.lines.data[0].to_dict())


def test_the_api_keeps_showing_the_account_version(stripe_client, sandbox, webhook_receiver):
    create_endpoint(stripe_client, webhook_receiver.url, api_version=OLD)
    subscribe_and_pay(stripe_client)
    sandbox.webhooks.wait_idle()
    paid = stripe_client.v1.events.list(params={"type": "invoice.paid"}).data[0]
    assert paid.api_version == sandbox.settings.api_version
    assert "parent" in paid.data.object and "charge" not in paid.data.object
