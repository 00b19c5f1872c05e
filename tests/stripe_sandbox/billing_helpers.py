"""Set-up shared by the billing tests: a catalog, customers with cards, the clock and the event tail.

Everything goes through the real SDK and the sandbox's HTTP server. The numbers the tests use: prices in EUR
exclusive of tax, customers in Denmark (25 % VAT) unless said otherwise, the clock starting 2026-01-01.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import stripe

DAY = 24 * 3600


def at(year: int, month: int, day: int, hour: int = 0) -> int:
    """Return a UTC instant as Unix seconds."""
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp())


def make_price(client: stripe.StripeClient, amount: int, *, name: str = "Premium", interval: str = "month",
               count: int = 1, tax_behavior: str = "exclusive") -> stripe.Price:
    product = client.v1.products.create(params={"name": name})
    return client.v1.prices.create(params={
        "product": product.id, "unit_amount": amount, "currency": "eur", "tax_behavior": tax_behavior,
        "recurring": {"interval": interval, "interval_count": count}, "metadata": {"plan": name.lower()}})


def make_customer(client: stripe.StripeClient, *, country: str | None = "DK", card: str | None = "pm_card_visa",
                  **params: Any) -> stripe.Customer:
    """Create a customer in `country` whose default payment method is the test card `card`."""
    if country:
        params["address"] = {"country": country}
    customer = client.v1.customers.create(params=params)
    if card:
        set_default_card(client, customer.id, card)
    return client.v1.customers.retrieve(customer.id)


def set_default_card(client: stripe.StripeClient, customer_id: str, card: str) -> stripe.PaymentMethod:
    """Attach a test card (`pm_card_visa`, `pm_card_chargeCustomerFail`, …) and make it the default."""
    method = client.v1.payment_methods.attach(card, params={"customer": customer_id})
    client.v1.customers.update(customer_id, params={"invoice_settings": {"default_payment_method": method.id}})
    return method


def subscribe(client: stripe.StripeClient, customer: stripe.Customer, price: stripe.Price,
              **params: Any) -> stripe.Subscription:
    return client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}], **params})


def advance(client: stripe.StripeClient, *, to: int | None = None, days: int | None = None) -> None:
    """Move the sandbox clock through its HTTP route (the clock's work happens on the way)."""
    params = {"frozen_time": to} if to is not None else {"days": days}
    client.raw_request("post", "/v1/test_helpers/sandbox_clock/advance", **params)


def now(client: stripe.StripeClient) -> int:
    clock = client.deserialize(client.raw_request("get", "/v1/test_helpers/sandbox_clock"), api_mode="V1")
    return clock["frozen_time"]


class EventTail:
    """The events appended since the last read, oldest first (read through `events.list`)."""

    def __init__(self, client: stripe.StripeClient):
        self.client = client
        newest = client.v1.events.list(params={"limit": 1}).data
        self.last: str | None = newest[0].id if newest else None

    def read(self) -> list[stripe.Event]:
        params: dict[str, Any] = {"limit": 100}
        if self.last:
            params["ending_before"] = self.last
        # With `ending_before` the SDK pages toward newer events and yields them oldest first.
        events = list(self.client.v1.events.list(params=params).auto_paging_iter())
        if events:
            self.last = events[-1].id
        return events


def types(events: list[stripe.Event]) -> list[str]:
    return [event.type for event in events]


def previous(event: stripe.Event) -> dict[str, Any]:
    """Return an event's previous_attributes as plain data."""
    return event.data.to_dict()["previous_attributes"]


def single_instant(events: list[stripe.Event]) -> int:
    """Assert the events share one `created` second (one change, as Stripe stamps it) and return it."""
    instants = {event.created for event in events}
    assert len(instants) == 1, instants
    return instants.pop()
