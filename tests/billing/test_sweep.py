"""The drift sweep through the sandbox: one listing call per 100 subscriptions, chunk jobs, detect-only writes."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from backoffice.billing.models import Subscription
from backoffice.billing.reconcile import sweep
from backoffice.billing.reconcile.tasks import sweep_job
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db

TENANTS = ("ten_sweep_a", "ten_sweep_b", "ten_sweep_c")


def subscribed(harness):
    for tenant in TENANTS:
        SCENARIOS["subscribe"](harness.demo, harness.tenant(tenant))
    harness.settle()


def test_a_sweep_flags_only_the_diverging_subscription_in_one_listing_call(harness):
    subscribed(harness)
    with harness.app.app_context():
        db.session.execute(update(Subscription).where(Subscription.tenant_id == "ten_sweep_b").values(plan="premium"))
        db.session.commit()
        before = sum(harness.sandbox.request_counts.values())
        result = sweep_job()
        assert result["pages"] == 1 and result["due"] == 3 and result["error"] is None
    harness.replay()  # the chunk jobs, as a worker runs them
    # One listing request covered the three subscriptions (the catalog is already stored locally).
    assert sum(harness.sandbox.request_counts.values()) - before == 1
    with harness.app.app_context():
        rows = {s.tenant_id: s for s in db.session.scalars(select(Subscription))}
        assert rows["ten_sweep_b"].has_drift_detected
        assert [d["kind"] for d in rows["ten_sweep_b"].drift_discrepancies] == ["SubscriptionStateMismatch"]
        assert not rows["ten_sweep_a"].has_drift_detected and not rows["ten_sweep_c"].has_drift_detected
        assert all(s.drift_checked_at is not None for s in rows.values())
        assert rows["ten_sweep_b"].plan == "premium"  # detect mode wrote nothing but the drift columns
        state = sweep.read_state(db.session)
        assert (state.due, state.checked, state.failures, state.listed) == (3, 3, [], True)
        assert sweep.due_count(db.session, datetime.now(UTC)) == 0


def test_without_stripe_the_sweep_skips(app, db_connection, settings):
    settings(STRIPE_SECRET_KEY=None)
    with app.app_context():
        assert sweep_job() == {"skipped": "Stripe is not configured"}


def test_a_listing_that_fails_leaves_the_unlisted_due(harness):
    subscribed(harness)
    harness.server.stop()
    with harness.app.app_context():
        harness.app.config["STRIPE_RATE_LIMIT"] = 1000
        result = sweep_job()
        assert result["error"] and result["pages"] == 0
        assert sweep.due_count(db.session, datetime.now(UTC)) == 3
        assert all(s.drift_checked_at is None for s in db.session.scalars(select(Subscription)))


def test_the_jobs_page_runs_a_sweep_for_admins_only_and_shows_it(harness, client, admin_headers, operator_headers):
    subscribed(harness)
    page = client.get("/jobs", headers=operator_headers).get_data(as_text=True)
    assert 'data-testid="sweep-due">3<' in page and 'data-testid="start-sweep"' not in page
    csrf = client.get("/jobs", headers=admin_headers).get_data(as_text=True).split(
        'name="csrf-token" content="', 1)[1].split('"', 1)[0]
    assert client.post("/jobs/sweep", headers={**operator_headers, "X-CSRFToken": csrf},
                       data={"reason": "x"}).status_code == 403
    started = client.post("/jobs/sweep", headers={**admin_headers, "X-CSRFToken": csrf}, data={"reason": "nightly"})
    assert started.status_code == 303
    harness.replay()  # the coordinator, then its chunk jobs
    harness.replay()
    shown = client.get("/jobs", headers={**admin_headers, "HX-Request": "true"}).get_data(as_text=True)
    assert "3 of 3 checked, 0 failed" in shown and "<html" not in shown


def test_the_cli_sweeps_and_waits(harness):
    subscribed(harness)
    runner = harness.app.test_cli_runner()
    result = runner.invoke(args=["billing", "sweep"])
    assert result.exit_code == 0, result.output
    assert "3 due, 1 listing page(s)" in result.output
    harness.replay()  # the chunk jobs, as the workers run them
    again = runner.invoke(args=["billing", "sweep", "--wait", "--timeout", "10"])
    assert again.exit_code == 0, again.output
    assert "0 due" in again.output and "checked 0, failed 0, remaining 0" in again.output
