"""The dataset generator: deterministic plans with the requested mix, played against the sandbox, and the CLI."""
import json
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backoffice.accounts.models import Tenant, User
from backoffice.billing.models import BillingEvent, StripeEvent, StripeEventState, Subscription
from backoffice.demo.generator import MONTH, DatasetBuilder, DemoMix, plan_tenants
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer

START = 1735689600  # 2025-01-01


def summary(plans):
    return [(p.tenant_id, [(a.at, a.name, sorted(a.args.items())) for a in p.actions]) for p in plans]


def test_plans_are_deterministic_under_a_seed():
    assert summary(plan_tenants(3, 50, 12, START)) == summary(plan_tenants(3, 50, 12, START))
    assert summary(plan_tenants(3, 50, 12, START)) != summary(plan_tenants(4, 50, 12, START))


def test_the_mix_follows_its_parameters():
    mix = DemoMix(free=0.3, premium=0.5, yearly=0.2)
    plans = plan_tenants(8, 3000, 24, START, mix)
    subscriptions = [p.actions[0] for p in plans if p.actions]
    assert abs(1 - len(subscriptions) / len(plans) - 0.3) < 0.04  # late sign-ups may not subscribe in the window
    assert abs(sum(a.args["plan"] == "premium" for a in subscriptions) / len(subscriptions) - 0.5) < 0.04
    assert abs(sum(a.args["interval"] == "year" for a in subscriptions) / len(subscriptions) - 0.2) < 0.03
    kinds = Counter(a.name for p in plans for a in p.actions)
    for kind in ("change_plan", "schedule_downgrade", "cancel_at_period_end", "reactivate", "win_back", "fail_card",
                 "fix_card_and_pay", "refund", "credit_note", "cancel_now"):
        assert kinds[kind] > 0, kind
    assert all(a.at < 24 * MONTH for p in plans for a in p.actions)
    assert all([a.at for a in p.actions] == sorted(a.at for a in p.actions) for p in plans)
    assert any(p.records.tenant["deleted_at"] for p in plans) and any(p.missed_webhooks for p in plans)


def build(seed: int):
    settings = SandboxSettings(currency="DKK", tax_rates={"DK": Decimal(25)}, seed=9, start_time=START)
    server = SandboxServer(Sandbox(settings)).start()
    try:
        demo = StripeDemo.connect(server.url, settings.secret_key, "DKK")
        plans = plan_tenants(seed, 40, 6, START)
        report = DatasetBuilder(demo, plans, START, seed).run()
        demo.advance_to(START + 6 * MONTH)
        events = [(e["type"], e["created"]) for e in server.sandbox.events.events]
        customers = [c.to_dict() for c in demo.client.v1.customers.list(params={"limit": 100}).auto_paging_iter()]
    finally:
        server.stop()
    return plans, report, events, customers


def test_building_against_the_sandbox_links_every_customer_and_repeats_exactly():
    plans, report, events, customers = build(21)
    tenant_ids = {p.tenant_id for p in plans}
    assert customers and all(c["metadata"]["tenant_id"] in tenant_ids for c in customers)
    # Deleted customers leave Stripe's list but not the report.
    assert {c["metadata"]["tenant_id"] for c in customers} <= set(report.customers)
    assert report.skipped == 0
    assert {"customer.subscription.created", "invoice.paid", "customer.subscription.updated"} <= {t for t, _ in events}
    assert [created for _, created in events] == sorted(created for _, created in events)
    assert build(21)[2] == events


@pytest.fixture
def cli(app, db_connection):
    return app.test_cli_runner()


def test_demo_load_cli_writes_tenants_and_keeps_the_sandbox(cli, db_session, tmp_path, settings):
    settings(STRIPE_API_BASE=None, BLOB_DIR=str(tmp_path / "blobs"), PLATFORM_CURRENCY="EUR")
    state = tmp_path / "sandbox.json"
    result = cli.invoke(args=["demo", "load", "--tenants", "6", "--months", "2", "--seed", "5",
                              "--sandbox-state", str(state), "--vat", "DK=25"])
    assert result.exit_code == 0, result.output
    assert "6 tenants" in result.output
    assert db_session.scalar(select(func.count()).select_from(Tenant)) == 6
    assert db_session.scalar(select(func.count()).select_from(User)) > 6
    saved = json.loads(state.read_text())
    customers = [o for o in saved["store"]["objects"].values() if o["object"] == "customer"]
    tenant_ids = set(db_session.scalars(select(Tenant.id)))
    assert customers and {c["metadata"]["tenant_id"] for c in customers} <= tenant_ids
    # Every event went through Backoffice's own webhook into the archive, then into the ledger.
    archived = db_session.scalar(select(func.count()).select_from(StripeEvent))
    assert archived >= len(customers) * 3, result.output
    assert db_session.scalar(select(func.count()).select_from(StripeEventState).where(StripeEventState.status == "pending")) == 0
    created = db_session.scalar(select(func.count()).select_from(BillingEvent)
                                .where(BillingEvent.event_type == "SubscriptionCreated"))
    assert created >= 1 and "Stripe events archived; ledger:" in result.output
    assert "0 waiting for prices or coupons" in result.output  # the replay asked the sandbox what it lacked
    assert db_session.scalar(select(func.count()).select_from(BillingEvent)
                             .where(BillingEvent.event_type == "Unclassified")) == 0
    # The load ends with one drift check of every account, so the banners speak from the first page.
    assert "drift check: " in result.output and " accounts checked" in result.output
    # Not a terminal here: each phase still says it is moving, one line per tenth of the way.
    assert "Stripe lifecycles: 100 %" in result.output and "Replaying into the ledger: done in" in result.output
    assert db_session.scalar(select(func.count()).select_from(Subscription)
                             .where(Subscription.drift_checked_at.is_(None))) == 0
    assert not [o for o in saved["store"]["objects"].values() if o["object"] == "webhook_endpoint"]
    again = cli.invoke(args=["demo", "load", "--tenants", "1", "--months", "1"])
    assert again.exit_code != 0 and "already holds tenants" in again.output


def test_accounts_marked_for_missed_webhooks_lose_their_deliveries(webhook_receiver):
    settings = SandboxSettings(currency="EUR", seed=9, start_time=START)
    server = SandboxServer(Sandbox(settings)).start()
    try:
        demo = StripeDemo.connect(server.url, settings.secret_key, "EUR")
        endpoint, secret = demo.listen(webhook_receiver.url)
        assert secret.startswith("whsec_")
        plans = plan_tenants(21, 40, 3, START, DemoMix(free=0.0, missed_webhooks=0.25))
        report = DatasetBuilder(demo, plans, START, 21, webhook_endpoint=endpoint).run()
        server.sandbox.webhooks.wait_idle()
        delivered = [r.event for r in webhook_receiver.received]
        stored = server.sandbox.events.events
    finally:
        server.stop()
    lost = set(report.lost_webhooks)
    assert lost and lost < set(report.customers.values())
    customer_of = {e["id"]: e["data"]["object"].get("customer") for e in stored}
    delivered_ids = {e["id"] for e in delivered}
    # The endpoint saw the customer being set up, then nothing of its subscription's history.
    subscribed = {e["data"]["object"]["customer"]: e["id"] for e in stored if e["type"] == "customer.subscription.created"}
    first_lost = {customer: [e["id"] for e in stored].index(event_id) for customer, event_id in subscribed.items()
                  if customer in lost}
    missed = [e for position, e in enumerate(stored)
              if customer_of[e["id"]] in first_lost and position >= first_lost[customer_of[e["id"]]]]
    assert missed and not any(e["id"] in delivered_ids for e in missed)
    kept = [e for e in stored if customer_of[e["id"]] in set(report.customers.values()) - lost]
    assert kept and all(e["id"] in delivered_ids for e in kept)
