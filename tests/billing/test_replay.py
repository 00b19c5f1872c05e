"""The replay job: order independence and corrections (DESIGN §4.4, §4.6), linking (§4.3), the version
allow-list (§4.2), the archive's status machine (§4.7), Redis down, a real RQ worker, and the CLI."""
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on

from backoffice.billing.models import (
    BillingEventCorrection,
    MrrDaily,
    StripeEvent,
    StripeEventState,
    archived_with_states,
    effective_billing_events,
)
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from backoffice.jobs import in_process_runner
from tests.billing.harness import D, reversed_order
from tests.billing.test_scenario_ledgers import EXPECTED

T = "ten_replay"


def committed_and_rollup(app):
    """Σ latest effective committed MRR per subscription, and Σ mrr_daily deltas: equal by construction."""
    view = effective_billing_events
    with app.app_context():
        latest = select(view.c.committed_mrr).ext(distinct_on(view.c.subscription_id)).order_by(
            view.c.subscription_id, view.c.occurred_at.desc(), view.c.position.desc(), view.c.stripe_event_id.desc())
        committed = sum(db.session.scalars(latest), D(0))
        rolled = db.session.scalar(select(func.coalesce(func.sum(MrrDaily.delta_sum), 0)))
    return D(committed), D(rolled)


def verify_output(app):
    result = app.test_cli_runner().invoke(args=["billing", "verify"])
    return result.exit_code, result.output


def test_every_event_late_gives_the_in_order_ledger_through_corrections(harness, app):
    harness.tenant(T)
    SCENARIOS["downgrade_takes_effect"](harness.demo, T)
    harness.sandbox.webhooks.wait_idle()
    for received in reversed_order(harness.receiver.received):
        harness.client.post("/webhooks/stripe", data=received.body, headers={
            "Stripe-Signature": received.headers["Stripe-Signature"], "Content-Type": "application/json"})
        harness.replay()  # each arrival replayed at once: every later row must be corrected
    assert harness.ledger(T) == EXPECTED["downgrade_takes_effect"]
    with app.app_context():
        corrections = db.session.scalars(select(BillingEventCorrection)).all()
    assert corrections and all(c.reason == "late event" for c in corrections)
    assert committed_and_rollup(app) == (D(49), D(49))
    assert verify_output(app) == (0, "0 ledger difference(s), 0 payment difference(s)\n")


@hypothesis_settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_delivery_order_and_batching_gives_the_same_ledger(harness_factory, db_connection, app, data):
    harness = _scenario_once(harness_factory, "payment_failed_then_suspended")
    deliveries = list(harness.receiver.received)
    order = data.draw(st.permutations(range(len(deliveries))), label="delivery order")
    cuts = data.draw(st.sets(st.integers(1, len(deliveries) - 1), max_size=4), label="replays after")
    duplicates = data.draw(st.lists(st.sampled_from(range(len(deliveries))), max_size=3), label="redelivered")
    savepoint = db_connection.begin_nested()
    try:
        for index, position in enumerate([*order, *duplicates]):
            received = deliveries[position]
            response = harness.client.post("/webhooks/stripe", data=received.body, headers={
                "Stripe-Signature": received.headers["Stripe-Signature"], "Content-Type": "application/json"})
            assert response.status_code == 200
            if index + 1 in cuts:
                harness.replay()
        harness.replay()
        assert harness.ledger(T) == EXPECTED["payment_failed_then_suspended"]
        assert committed_and_rollup(app) == (D(0), D(0))
    finally:
        savepoint.rollback()
        runner = in_process_runner(app)
        runner.forget()


_SCENARIO_RUNS = {}


def _scenario_once(harness_factory, name):
    """One sandbox run per test (per factory), its deliveries then posted in many orders."""
    key = (id(harness_factory), name)
    if key not in _SCENARIO_RUNS:
        _SCENARIO_RUNS.clear()
        harness = _SCENARIO_RUNS[key] = harness_factory()
        harness.tenant(T)
        SCENARIOS[name](harness.demo, T)
        harness.sandbox.webhooks.wait_idle()
    return _SCENARIO_RUNS[key]


def test_unknown_tenant_waits_ignored_until_it_appears(harness):
    SCENARIOS["subscribe"](harness.demo, "ten_later")  # Stripe knows the tenant before Backoffice does
    harness.settle()
    assert harness.statuses().get("processed", 0) == 0
    assert harness.ledger("ten_later") == []
    harness.tenant("ten_later")
    result = harness.app.test_cli_runner().invoke(args=["billing", "replay", "--all"])
    assert result.exit_code == 0, result.output
    assert harness.ledger("ten_later") == EXPECTED["subscribe"]


def test_a_second_customer_for_a_tenant_is_refused(harness):
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    SCENARIOS["immediate_cancel"](harness.demo, T)  # another Stripe customer naming the same tenant
    harness.settle()
    assert harness.ledger(T) == EXPECTED["subscribe"]
    with harness.app.app_context():
        errors = set(db.session.scalars(select(StripeEventState.error).where(StripeEventState.status == "ignored")))
    assert any(error and error.startswith("DuplicateCustomerForTenant") for error in errors)


def test_an_unsupported_api_version_is_archived_not_replayed_until_allowed(harness_factory, settings):
    harness = harness_factory(api_version="2020-08-27")
    settings(STRIPE_API_VERSIONS=("2025-03-31.basil",))
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.settle()
    assert [r for r in harness.ledger(T) if r[0] != "NoOp"] == []
    with harness.app.app_context():
        errors = set(db.session.scalars(select(StripeEventState.error).select_from(archived_with_states())
                                           .where(StripeEventState.status == "ignored",
                                                  StripeEvent.stripe_customer_id.is_not(None))))
    assert errors == {"UnsupportedStripeApiVersion: '2020-08-27' is not in STRIPE_API_VERSIONS"}
    settings(STRIPE_API_VERSIONS=("2020-08-27", "2025-03-31.basil"))
    assert harness.app.test_cli_runner().invoke(args=["billing", "replay", "--all"]).exit_code == 0
    assert harness.ledger(T) == EXPECTED["subscribe"]


def test_with_redis_down_events_are_archived_and_acknowledged(harness, settings):
    settings(REDIS_URL="redis://127.0.0.1:1/0")
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.deliver()  # asserts 200 for every delivery
    assert harness.statuses() == {"pending": len(harness.receiver.received)}
    settings(REDIS_URL=None)
    assert harness.app.test_cli_runner().invoke(args=["billing", "replay", "--all"]).exit_code == 0
    assert harness.ledger(T) == EXPECTED["subscribe"]


def test_the_sweeper_queues_what_redis_missed_and_nothing_twice(harness, settings, app):
    from backoffice.billing.replay.tasks import sweep_pending

    settings(REDIS_URL="redis://127.0.0.1:1/0")
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.deliver()
    settings(REDIS_URL=None)
    with app.app_context():
        assert sweep_pending(older_than=30)["queued"] == 0  # just arrived: the webhook's own job may be on its way
        assert sweep_pending(older_than=0) == {"queued": 2, "stale_markers": 0}  # the customer, and the events that name none
        assert sweep_pending(older_than=0) == {"queued": 0, "stale_markers": 0}  # already queued
    harness.replay()
    assert harness.ledger(T) == EXPECTED["subscribe"]
    assert "pending" not in harness.statuses()


def test_the_catalog_is_filled_from_stripe(harness, app):
    from backoffice.billing.models import PlanPrice
    from backoffice.billing.replay.tasks import refresh_catalog

    with app.app_context():
        assert refresh_catalog() == {"prices": 4}
        prices = {(p.plan, p.interval): p.unit_amount for p in db.session.scalars(select(PlanPrice))}
    assert prices == {("standard", "month"): D(49), ("standard", "year"): D(490),
                      ("premium", "month"): D(99), ("premium", "year"): D(990)}


def test_a_deleted_tenant_keeps_the_billing_it_had_but_gains_no_new_customer(harness, app):
    from datetime import UTC, datetime

    from backoffice.accounts.models import Tenant

    harness.tenant(T)
    harness.tenant("ten_gone_first")
    with app.app_context():
        db.session.get(Tenant, T).deleted_at = datetime(2026, 6, 1, tzinfo=UTC)  # after its subscription began
        db.session.get(Tenant, "ten_gone_first").deleted_at = datetime(2025, 6, 1, tzinfo=UTC)  # before
        db.session.commit()
    SCENARIOS["subscribe"](harness.demo, T)
    SCENARIOS["subscribe"](harness.demo, "ten_gone_first")
    harness.settle()
    assert harness.ledger(T) == EXPECTED["subscribe"]
    assert harness.ledger("ten_gone_first") == []


def test_a_customer_is_replayed_once_its_events_have_settled(harness, settings, app):
    import time

    settings(SETTLE_SECONDS=2)
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.deliver()
    harness.replay()  # too early: the job queues itself again for when the burst has settled, holding no worker
    assert harness.ledger(T) == []
    time.sleep(2.1)
    harness.replay()
    assert harness.ledger(T) == EXPECTED["subscribe"]


def test_one_broken_customer_stops_no_other_in_a_replay_batch(harness, app):
    from tests.billing.test_ledger_rules import crafted

    harness.tenant(T)
    harness.tenant("ten_broken")
    SCENARIOS["subscribe"](harness.demo, T)
    SCENARIOS["subscribe"](harness.demo, "ten_broken")
    harness.deliver()
    broken = harness.delivered_events("customer.subscription.created")[-1]  # the second tenant's
    event = crafted(broken, "garbled", type="customer.subscription.updated",
                    **{"data.previous_attributes": {"metadata": {}}})
    event["data"]["object"]["items"]["data"][0]["price"]["unit_amount"] = "garbled"
    assert harness.post_event(event).status_code == 200
    in_process_runner(app).forget()
    result = app.test_cli_runner().invoke(args=["billing", "replay", "--all"])
    assert result.exit_code == 1 and "failed 1" in result.output
    assert harness.ledger(T) == EXPECTED["subscribe"]
    with app.app_context():
        errors = set(db.session.scalars(select(StripeEventState.error).where(StripeEventState.status == "failed")))
    assert len(errors) == 1 and "InvalidOperation" in errors.pop()


def test_the_catalog_refresh_skips_without_stripe(app, db_connection, settings):
    from backoffice.billing.replay.tasks import refresh_catalog

    settings(STRIPE_SECRET_KEY=None, STRIPE_API_BASE=None)
    with app.app_context():
        assert refresh_catalog() == {"skipped": "Stripe is not configured"}
