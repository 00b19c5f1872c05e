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


def sync_from_menu(page, reason):
    """Sync the open account from its actions menu; return the result's text once the page shows it."""
    page.get_by_test_id("actions-menu").locator("summary").click()
    page.get_by_test_id("sync-form").get_by_role("textbox").fill(reason)
    page.get_by_test_id("sync-form").get_by_role("button", name="Sync").click()
    page.get_by_test_id("sync-result").wait_for(timeout=30000)
    return page.get_by_test_id("sync-result").inner_text()


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
        from backoffice.billing.models import StripeEvent, StripeEventState, archived_with_states

        stored = db.session.scalar(select(StripeEvent).select_from(archived_with_states())
                                   .where(StripeEventState.tenant_id == T).limit(1))
        altered = {**stored.payload, "livemode": not stored.payload.get("livemode")}
        db.session.remove()
    body = json.dumps(altered).encode()
    signature = sign(body, stripe_world["endpoint"].secret, int(time.time()))
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
    assert page.request.post(f"{url}/webhooks/stripe", data=body, headers=headers).status == 200
    result = sync_from_menu(page, "check the divergent delivery")
    # Listed once: the result box counts and points at the drift panel, which groups them with their actions.
    assert "StripeEventPayloadDivergence" not in result and "see the drift panel" in result
    assert "StripeEventPayloadDivergence" in page.get_by_test_id("drift-panel").inner_text()
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


def test_admin_recovers_an_account_whose_history_stripe_no_longer_lists(stripe_world, page):
    """The subscription's creation was lost in an outage more than 30 days ago: the Sync finds the gap, the red
    panel offers the recovery with the gap's date as the cutoff, and the recovery leaves the account clean."""
    url, app, server = stripe_world["url"], stripe_world["app"], stripe_world["server"]
    gap = "ten_e2e_gap"
    with app.app_context():
        make_tenant(db.session, id=gap, name="Old Gap ApS", country="DK")
        db.session.commit()
    scenario = Scenario(stripe_world["scenario"].demo, "e2e_gap", gap)
    scenario.customer()

    def linked(plan=None):
        with app.app_context():
            row = db.session.scalar(select(Subscription).where(Subscription.tenant_id == gap))
            db.session.remove()
            return row is not None and row.stripe_customer_id is not None and (plan is None or row.plan == plan)
    wait_for(linked)
    endpoint = stripe_world["endpoint"].id
    server.sandbox.webhooks.set_knobs(endpoint, DeliveryKnobs(drop_customers=(scenario.run.customer_id,)))
    scenario.subscribe("standard")
    server.sandbox.webhooks.set_knobs(endpoint, DeliveryKnobs())
    scenario.advance(days=40)  # a renewal arrives; the creation has left Stripe's 30-day list
    wait_for(lambda: linked("standard"))

    sign_in_as_admin(page, url, f"/accounts/{gap}")
    sync_from_menu(page, "MRR looks wrong")
    unrecoverable = page.locator('[data-testid=drift-kind][data-kind="MissingHistoricalEventUnrecoverable"]')
    assert unrecoverable.get_by_test_id("drift-recovery-link").is_visible()
    page.goto(f"{url}/accounts/{gap}")
    panel = page.get_by_test_id("recovery-panel")
    # The subscription and its first invoice: neither has an archived event.
    assert panel.is_visible() and page.get_by_test_id("recovery-gaps").locator("tbody tr").count() == 2
    assert panel.locator("input[name=cutoff]").input_value() in ("2026-01-01T00:00", "2026-01-01T00:00:00")
    screenshot(page, "account-disaster-recovery")
    panel.locator("input[name=reason]").fill("subscription created during the January outage")
    page.get_by_test_id("recovery-submit").click()
    result = page.get_by_test_id("sync-result")
    result.wait_for(timeout=30000)
    assert "In step with Stripe." in result.inner_text()
    assert "2 gaps covered by a baseline of €49.00 per month." in page.get_by_test_id("recovery-result").inner_text()
    # The page reloaded with the result on top: no drift and no offer any more, the baseline in the ledger.
    assert page.get_by_test_id("recovery-panel").count() == 0 and page.get_by_test_id("drift-panel").count() == 0
    assert page.get_by_text("Ledger baseline").first.is_visible()
    screenshot(page, "account-disaster-recovery-result")


def test_a_sync_with_stripe_unreachable_says_so_and_retries(stripe_world, page):
    """Stripe away: one sentence (what failed, what was kept, what to do), the exception folded for admins, and a
    Retry that, once Stripe is back, syncs."""
    from tests.throwaway_servers import free_port

    url, app = stripe_world["url"], stripe_world["app"]
    sign_in_as_admin(page, url, f"/accounts/{T}")
    api_base = app.config["STRIPE_API_BASE"]
    app.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    try:
        page.get_by_test_id("actions-menu").locator("summary").click()
        page.get_by_test_id("sync-form").get_by_role("textbox").fill("customer says the plan is wrong")
        page.get_by_test_id("sync-form").get_by_role("button", name="Sync").click()
        failure = page.get_by_test_id("sync-failure")
        failure.wait_for(timeout=60000)
    finally:
        app.config["STRIPE_API_BASE"] = api_base
    assert failure.inner_text() == ("Stripe could not be reached, so the sync stopped. Nothing was changed. Retry in a "
                                    "few minutes; if it keeps failing, check that the worker can reach Stripe.")
    detail = page.get_by_test_id("sync-detail")
    assert detail.is_visible() and not detail.locator("pre").is_visible()  # folded
    assert "support@stripe.com" not in page.get_by_test_id("sync-result").locator("p").first.inner_text()
    detail.locator("summary").click()
    assert "StripeUnavailable" in detail.locator("pre").inner_text()
    screenshot(page, "account-sync-failed")
    retry = page.get_by_test_id("sync-retry")
    retry.get_by_role("textbox").fill("retry once Stripe is back")
    retry.get_by_role("button", name="Retry").click()
    page.wait_for_url(f"{url}/accounts/{T}?sync=*")
    page.get_by_test_id("sync-result").wait_for(timeout=30000)
    page.wait_for_function("() => !document.querySelector('[data-testid=sync-failure]') && "
                           "document.querySelector('[data-testid=sync-result]')?.innerText.includes('ledger row')",
                           timeout=30000)
    page.goto(f"{url}/audit")
    log = page.get_by_test_id("audit-log").inner_text()
    assert "Stripe could not be reached, so the sync stopped" in log and "support@stripe.com" not in log


def test_discrepancies_are_grouped_per_ledger_row_once_with_their_actions(stripe_world, page):
    """Sixteen field-level discrepancies of eight stale rows: one group, eight rows of two fields, one Restate."""
    from backoffice.billing.models import Subscription as Sub

    url, app = stripe_world["url"], stripe_world["app"]
    stale = "ten_e2e_stale"
    with app.app_context():
        make_tenant(db.session, id=stale, name="Stale Rows ApS", country="DK")
        db.session.flush()
        found = [{"kind": "BillingEventDenormalizationStale", "severity": "WARNING", "event_id": f"evt_stale_{row}",
                  "field": name, "message": f"{name} differs from a fresh replay", "actual": "39.00", "expected": "49.00"}
                 for row in range(8) for name in ("amount_delta", "committed_mrr")]
        found.append({"kind": "SubscriptionStateMismatch", "severity": "CRITICAL", "message": "plan differs",
                      "expected": "premium", "actual": "standard"})
        db.session.add(Sub(id="sub_e2e_stale", tenant_id=stale, stripe_customer_id="cus_e2e_stale",
                           has_drift_detected=True, drift_discrepancies=found))
        db.session.commit()
    sign_in_as_admin(page, url, f"/accounts/{stale}")
    panel = page.get_by_test_id("drift-panel")
    restate = panel.locator('[data-action="restate"]')
    assert restate.get_by_test_id("drift-row").count() == 16
    assert restate.locator("th[rowspan='2']").count() == 8
    assert restate.get_by_test_id("restate-stale").get_by_role("button", name="Restate").is_visible()
    acknowledge = panel.locator('[data-action="acknowledge"]')
    assert acknowledge.get_by_role("link", name="Acknowledge").is_visible()
    assert page.get_by_text("evt_stale_3").count() == 1  # shown once on the page
    height = panel.bounding_box()["height"]
    print(f"drift panel with 16 field-level discrepancies of 8 rows: {height:.0f} px tall at 1280 px")
    assert height < 1600
    screenshot(page, "account-drift-grouped")
