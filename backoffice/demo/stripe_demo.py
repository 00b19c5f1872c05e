"""The demo's door to Stripe (the sandbox, through the official SDK): catalog, clock and event tracking."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import stripe

# Demo list prices in minor units, applied in whatever currency the platform bills in. `basis` is free
# and has no Stripe price (DESIGN §4.1).
PLAN_AMOUNTS = {"standard": {"month": 4900, "year": 49000}, "premium": {"month": 9900, "year": 99000}}
# Local price points for the customers billed in another currency than the platform's, where the euro's figures
# would be odd (49 kroner is about 6.50 EUR); the others take PLAN_AMOUNTS as they are (49 USD, 49 GBP).
LOCAL_AMOUNTS = {
    "dkk": {"standard": {"month": 36900, "year": 369000}, "premium": {"month": 74900, "year": 749000}},
    "sek": {"standard": {"month": 54900, "year": 549000}, "premium": {"month": 109900, "year": 1099000}},
}
CLOCK_ADVANCE = "/v1/test_helpers/sandbox_clock/advance"
CLOCK = "/v1/test_helpers/sandbox_clock"


@dataclass(frozen=True)
class Catalog:
    """Price ids by plan and interval."""

    prices: dict[str, dict[str, str]]
    currency: str

    def price(self, plan: str, interval: str = "month") -> str:
        return self.prices[plan][interval]


def ensure_catalog(client: stripe.StripeClient, currency: str,
                   plan_amounts: dict[str, dict[str, int]] = PLAN_AMOUNTS) -> Catalog:
    """Create (or find) the products and prices of the paid plans, tagged with metadata.plan."""
    currency = currency.lower()
    existing: dict[str, dict[str, str]] = {}
    for price in client.v1.prices.list(params={"active": True, "limit": 100}).auto_paging_iter():
        # A StripeObject, not a dict (the SDK refuses .get on it).
        plan = price.metadata.to_dict().get("plan") if price.metadata else None
        if plan in PLAN_AMOUNTS and price.currency == currency and price.recurring:
            existing.setdefault(plan, {})[price.recurring.interval] = price.id
    for plan, amounts in plan_amounts.items():
        if set(existing.get(plan, {})) == set(amounts):
            continue
        product = client.v1.products.create(params={"name": plan.title(), "metadata": {"plan": plan}})
        for interval, amount in amounts.items():
            price = client.v1.prices.create(params={
                "product": product.id, "unit_amount": amount, "currency": currency, "tax_behavior": "exclusive",
                "recurring": {"interval": interval}, "metadata": {"plan": plan},
            })
            existing.setdefault(plan, {})[interval] = price.id
    return Catalog(existing, currency)


@dataclass
class StripeDemo:
    """A client, the catalog, and the events seen so far (collected as they happen, before they age out)."""

    client: stripe.StripeClient
    catalog: Catalog  # in the platform currency
    seen: list[dict[str, Any]] = field(default_factory=list)
    catalogs: dict[str, Catalog] = field(default_factory=dict)  # the other currencies', by lower-case code
    clock: int | None = None  # the sandbox clock as last read or moved by us (nobody else moves it meanwhile)
    newest_created: int = 0
    newest_ids: set[str] = field(default_factory=set)

    @classmethod
    def connect(cls, api_base: str, secret_key: str, currency: str) -> StripeDemo:
        client = stripe.StripeClient(secret_key, base_addresses={"api": api_base}, max_network_retries=2)
        demo = cls(client, ensure_catalog(client, currency))
        demo.collect()
        return demo

    def catalog_for(self, currency: str) -> Catalog:
        """The plans' prices in `currency` (the platform's catalog, or one made the first time it is asked for)."""
        if currency.lower() == self.catalog.currency:
            return self.catalog
        if currency.lower() not in self.catalogs:
            self.catalogs[currency.lower()] = ensure_catalog(self.client, currency, self.amounts_for(currency))
        return self.catalogs[currency.lower()]

    def amounts_for(self, currency: str) -> dict[str, dict[str, int]]:
        """The plans' amounts in `currency`: the platform's are PLAN_AMOUNTS, another may have local ones."""
        if currency.lower() == self.catalog.currency:
            return PLAN_AMOUNTS
        return LOCAL_AMOUNTS.get(currency.lower(), PLAN_AMOUNTS)

    def now(self) -> int:
        """Return the sandbox clock."""
        if self.clock is None:
            self.clock = self._raw("get", CLOCK)["frozen_time"]
        return self.clock

    def advance(self, *, days: float = 0, seconds: int = 0) -> None:
        """Move the sandbox clock forward (renewals, retries and phase changes happen on the way)."""
        step = int(days * 86400) + seconds
        if step > 0:
            self.clock = self._raw("post", CLOCK_ADVANCE, seconds=step)["frozen_time"]

    def advance_to(self, instant: int) -> None:
        if instant > self.now():
            self.clock = self._raw("post", CLOCK_ADVANCE, frozen_time=instant)["frozen_time"]

    def collect(self) -> list[dict[str, Any]]:
        """Return the events created since the last call, oldest first, and remember them."""
        fresh: list[dict[str, Any]] = []
        listing = self.client.v1.events.list(params={"limit": 100, "created": {"gte": self.newest_created}})
        for event in listing.auto_paging_iter():
            if event.id in self.newest_ids:
                break  # newest first: everything from here on was collected before
            fresh.append(event.to_dict())
        fresh.reverse()
        if fresh:
            last_second = fresh[-1]["created"]
            if last_second != self.newest_created:
                self.newest_ids = set()
            self.newest_created = last_second
            self.newest_ids |= {e["id"] for e in fresh if e["created"] == last_second}
        self.seen.extend(fresh)
        return fresh

    def listen(self, url: str) -> tuple[str, str]:
        """Register a webhook endpoint for every event type; return its id and signing secret."""
        endpoint = self.client.v1.webhook_endpoints.create(params={"url": url, "enabled_events": ["*"]})
        return endpoint.id, endpoint.secret

    def lose_webhooks_of(self, endpoint_id: str, customers: list[str]) -> None:
        """Make the sandbox never deliver these customers' events to the endpoint (a reconcile must find them)."""
        self._raw("post", f"/v1/test_helpers/webhook_endpoints/{endpoint_id}/delivery_knobs",
                  drop_customers=customers)

    def _raw(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        response = self.client.raw_request(method, path, **params)
        return self.client.deserialize(response, api_mode="V1").to_dict()
