"""A Stripe account (the sandbox), Backoffice's real webhook, and the ledger it ends in, for the ledger tests.

The sandbox signs and delivers each event to a recording endpoint; the harness hands every delivery, byte
for byte with its Stripe-Signature header, to `POST /webhooks/stripe` (in Stripe's order, or another), then
drains the queued replay jobs as a burst worker would.
"""
from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from backoffice.accounts.models import Tenant
from backoffice.billing.models import StripeEventState, Subscription, effective_billing_events
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.extensions import db
from backoffice.jobs import in_process_runner
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from backoffice.stripe_sandbox.webhooks import sign
from tests.stripe_sandbox.conftest import WebhookReceiver, create_endpoint

START = 1767225600  # 2026-01-01T00:00:00Z
TAX_RATES = {"DK": Decimal(25), "DE": Decimal(19)}


def D(value: str | int | None) -> Decimal | None:  # noqa: N802 (reads like the literal it stands for)
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


class LedgerHarness:
    def __init__(self, app, client, settings, *, currency: str = "EUR", api_version: str | None = None, seed: int = 7):
        self.app, self.client = app, client
        self.server = SandboxServer(Sandbox(SandboxSettings(currency=currency, tax_rates=TAX_RATES, seed=seed,
                                                            start_time=START))).start()
        self.sandbox = self.server.sandbox
        self.sandbox.settings.webhook_retry_max_seconds = 0.1
        key = self.sandbox.settings.secret_key
        self.demo = StripeDemo.connect(self.server.url, key, currency)
        self.receiver = WebhookReceiver()
        params = {"api_version": api_version} if api_version else {}
        endpoint = create_endpoint(self.demo.client, self.receiver.url, **params)
        self.secret = endpoint.secret
        settings(STRIPE_WEBHOOK_SECRETS=(endpoint.secret,), STRIPE_SECRET_KEY=key, STRIPE_API_BASE=self.server.url,
                 PLATFORM_CURRENCY=currency)
        self.currency = currency
        self.delivered = 0

    def close(self) -> None:
        self.receiver.close()
        self.server.stop()

    def tenant(self, tenant_id: str, name: str | None = None) -> str:
        with self.app.app_context():
            db.session.add(Tenant(id=tenant_id, name=name or tenant_id, country="DK", plan="basis"))
            db.session.commit()
        return tenant_id

    def deliver(self, reorder: Callable[[list[Any]], list[Any]] | None = None) -> list[str]:
        """POST every new delivery to Backoffice's webhook; return the event ids in the order posted."""
        self.sandbox.webhooks.wait_idle()
        batch = self.receiver.received[self.delivered:]
        self.delivered += len(batch)
        if reorder is not None:
            batch = reorder(list(batch))
        for received in batch:
            response = self.client.post("/webhooks/stripe", data=received.body, headers={
                "Stripe-Signature": received.headers["Stripe-Signature"], "Content-Type": "application/json"})
            assert response.status_code == 200, response.get_data(as_text=True)
        return [r.event["id"] for r in batch]

    def post_event(self, event: dict[str, Any]) -> Any:
        """Sign an event as Stripe does, with the endpoint's secret, and POST it to the webhook."""
        body = json.dumps(event).encode()
        signature = sign(body, self.secret, int(time.time()))
        return self.client.post("/webhooks/stripe", data=body,
                                headers={"Stripe-Signature": signature, "Content-Type": "application/json"})

    def delivered_events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        self.sandbox.webhooks.wait_idle()
        events = [r.event for r in self.receiver.received]
        return [e for e in events if event_type is None or e["type"] == event_type]

    def replay(self) -> int:
        """Run the queued jobs (replays) to the end, as `worker.py --burst` does."""
        return in_process_runner(self.app).drain()

    def settle(self, reorder: Callable[[list[Any]], list[Any]] | None = None) -> None:
        self.deliver(reorder)
        self.replay()

    def ledger(self, tenant_id: str, *, hide_noop: bool = False) -> list[tuple]:
        """The effective ledger of a tenant: (type, from, to, previous, new, delta, committed, movement)."""
        return [values(r) for r in self.rows(tenant_id) if not (hide_noop and r.event_type == "NoOp")]

    def row_of(self, stripe_event_id: str) -> tuple:
        """The effective row of one event, as `ledger` shows rows."""
        view = effective_billing_events
        with self.app.app_context():
            return values(db.session.execute(select(view).where(view.c.stripe_event_id == stripe_event_id)).one())

    def rows(self, tenant_id: str) -> list[Any]:
        view = effective_billing_events
        with self.app.app_context():
            return db.session.execute(select(view).where(view.c.tenant_id == tenant_id)
                                      .order_by(view.c.occurred_at, view.c.position, view.c.stripe_event_id)).all()

    def subscription(self, tenant_id: str) -> Subscription:
        with self.app.app_context():
            subscription = db.session.scalars(select(Subscription).where(Subscription.tenant_id == tenant_id)).one()
            db.session.expunge(subscription)
            return subscription

    def statuses(self) -> dict[str, int]:
        with self.app.app_context():
            rows = db.session.execute(select(StripeEventState.status, StripeEventState.stripe_event_id)).all()
        counts: dict[str, int] = {}
        for status, _ in rows:
            counts[status] = counts.get(status, 0) + 1
        return counts


def values(r: Any) -> tuple:
    """A ledger row as the tests write them down: (type, from, to, previous, new, delta, committed, movement)."""
    return (r.event_type, r.from_plan, r.to_plan, r.previous_amount, r.new_amount, r.amount_delta, r.committed_mrr,
            r.movement)


def shuffled(seed: int) -> Callable[[list[Any]], list[Any]]:
    def reorder(batch: list[Any]) -> list[Any]:
        random.Random(seed).shuffle(batch)
        return batch
    return reorder


def reversed_order(batch: list[Any]) -> list[Any]:
    return batch[::-1]


def mrr_row(event_type, from_plan, to_plan, previous, new, movement):
    previous, new = D(previous), D(new)
    return (event_type, from_plan, to_plan, previous, new, new - previous, new, movement)


def info_row(event_type, to_plan, committed, from_plan=...):
    """A row that changes no amount; its from-plan is the as-of plan, the same as its to-plan unless given."""
    return (event_type, to_plan if from_plan is ... else from_plan, to_plan, None, None, None, D(committed), None)
