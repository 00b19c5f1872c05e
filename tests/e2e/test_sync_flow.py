"""Reconciliation in Chromium: an admin syncs an account whose webhooks were lost; a divergence raises the banner."""
from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from backoffice.billing.models import Subscription
from backoffice.demo.scenarios import Scenario
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.extensions import db
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from backoffice.stripe_sandbox.webhooks import DeliveryKnobs, sign
from tests.billing.harness import START, TAX_RATES
from tests.e2e.conftest import LIVE_SETTINGS, screenshot, serving
from tests.factories import make_tenant
from tests.stripe_sandbox.conftest import create_endpoint

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

T = "ten_e2e_sync"


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.fixture(scope="module")
def stripe_world(make_app, own_database):
    """A live Backoffice on its own database, fed by the sandbox's signed webhooks; one account subscribed."""
    server = SandboxServer(Sandbox(SandboxSettings(currency="EUR", tax_rates=TAX_RATES, seed=5, start_time=START))).start()
    key = server.sandbox.settings.secret_key
    app = make_app(SQLALCHEMY_DATABASE_URI=own_database, **LIVE_SETTINGS, IN_PROCESS_JOBS="threads",
                   STRIPE_SECRET_KEY=key, STRIPE_API_BASE=server.url, PUBLIC_SUBSCRIPTION_ENABLED=True)
    with app.app_context():
        make_tenant(db.session, id=T, name="Lost Webhooks ApS", country="DK")
        db.session.commit()
    with serving(app) as url:
        demo = StripeDemo.connect(server.url, key, "EUR")
        endpoint = create_endpoint(demo.client, f"{url}/webhooks/stripe")
        app.config["STRIPE_WEBHOOK_SECRETS"] = (endpoint.secret,)
        scenario = Scenario(demo, "e2e_sync", T)
        scenario.customer()
        scenario.subscribe("standard")

        def subscribed():
            with app.app_context():
                row = db.session.scalar(select(Subscription).where(Subscription.tenant_id == T))
                db.session.remove()
                return row is not None and row.plan == "standard"
        wait_for(subscribed)
        # From now on this customer's webhooks are lost, as in an outage.
        server.sandbox.webhooks.set_knobs(endpoint.id, DeliveryKnobs(drop_customers=(scenario.run.customer_id,)))
        scenario.change_plan("premium")
        yield {"url": url, "app": app, "endpoint": endpoint, "scenario": scenario, "server": server}
    server.stop()


def sign_in_as_admin(page, url, path):
    page.goto(f"{url}{path}")
    page.get_by_role("button", name="Sign in as admin").click()
    page.wait_for_url(f"{url}{path}")


def test_admin_syncs_lost_webhooks_then_a_divergence_raises_the_banner(stripe_world, page):
    url = stripe_world["url"]
    sign_in_as_admin(page, url, f"/accounts/{T}")
    assert page.get_by_test_id("account-header").get_by_text("Standard").is_visible()
    page.get_by_test_id("actions-menu").locator("summary").click()
    page.get_by_test_id("sync-form").get_by_role("textbox").fill("customer upgraded; we show standard")
    page.get_by_test_id("sync-form").get_by_role("button", name="Sync").click()
    page.wait_for_url(f"{url}/accounts/{T}?sync=*")
    result = page.get_by_test_id("sync-result")
    result.wait_for(timeout=30000)
    screenshot(page, "account-sync-result")
    assert "In step with Stripe." in result.inner_text()
    appended = int(page.get_by_test_id("sync-appended").inner_text().split()[0])
    assert appended >= 1
    page.reload()
    assert page.get_by_test_id("account-header").get_by_text("Premium").is_visible()

    # The same event id arrives again with another body: a divergence that the next Sync reports.
    with stripe_world["app"].app_context():
        from backoffice.billing.models import StripeEvent

        stored = db.session.scalar(select(StripeEvent).where(StripeEvent.tenant_id == T).limit(1))
        altered = {**stored.payload, "livemode": not stored.payload.get("livemode")}
        db.session.remove()
    body = json.dumps(altered).encode()
    signature = sign(body, stripe_world["endpoint"].secret, int(time.time()))
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
    assert page.request.post(f"{url}/webhooks/stripe", data=body, headers=headers).status == 200
    page.get_by_test_id("actions-menu").locator("summary").click()
    page.get_by_test_id("sync-form").get_by_role("textbox").fill("check the divergent delivery")
    page.get_by_test_id("sync-form").get_by_role("button", name="Sync").click()
    page.get_by_test_id("sync-result").wait_for(timeout=30000)
    assert "StripeEventPayloadDivergence" in page.get_by_test_id("sync-result").inner_text()
    page.goto(f"{url}/accounts")
    banner = page.locator("[data-banner=drift]")
    banner.wait_for(timeout=10000)
    screenshot(page, "banner-drift")
    banner.get_by_role("link").click()
    page.wait_for_url(f"{url}/accounts?driftDetected=true")
    names = page.locator("[data-testid=accounts] tbody td.name-cell a").all_inner_texts()
    assert names == ["Lost Webhooks ApS"]

    # Each Sync is in the audit log with its reason and result; the jobs page offers the sweep.
    page.goto(f"{url}/audit")
    log = page.get_by_test_id("audit-log")
    log.wait_for()
    assert "customer upgraded; we show standard" in log.inner_text()
    screenshot(page, "audit-log")
    page.goto(f"{url}/jobs")
    assert page.get_by_test_id("sweep-due").is_visible() and page.get_by_test_id("start-sweep").is_visible()
    screenshot(page, "jobs")
