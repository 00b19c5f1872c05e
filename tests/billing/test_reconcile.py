"""Reconciliation through the real pieces: the sandbox's events.list, the archive, the replay, drift detection."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from backoffice.billing.models import StripeEvent, Subscription
from backoffice.billing.reconcile import drift
from backoffice.billing.reconcile.tasks import sync_job
from backoffice.billing.reconcile.walk import read_anchor, walk_events, walk_unless_fresh
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from backoffice.stripe_gateway import StripeGateway
from backoffice.stripe_gateway.rate_limit import InProcessTokenBucket

T = "ten_reconciled"
DROPPED = ("customer.subscription.created", "invoice.payment_succeeded")


def without(*types):
    return lambda batch: [received for received in batch if received.event["type"] not in types]


def gateway_of(harness, retries=0):
    return StripeGateway(harness.sandbox.settings.secret_key, harness.server.url, InProcessTokenBucket(1000),
                         max_retries=retries)


def test_a_sync_recovers_dropped_webhooks_appends_the_rows_and_ends_clean(harness):
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.settle(without(*DROPPED))
    assert [row[0] for row in harness.ledger(T, hide_noop=True)] != ["SubscriptionCreated"]
    with harness.app.app_context():
        result = sync_job(T)
        assert result["appended"] >= 1 and result["clean"], result["discrepancies"]
        recovered = db.session.execute(select(StripeEvent.id, StripeEvent.type, StripeEvent.recovery_source)
                                       .where(StripeEvent.recovered_at.is_not(None))).all()
        # Every event Stripe lists that the webhook did not deliver: the dropped ones, and the types the
        # endpoint is not subscribed to.
        delivered = {e["id"] for e in harness.delivered_events() if e["type"] not in DROPPED}
        assert result["recovered"] == len(recovered) and set(DROPPED) <= {row.type for row in recovered}
        assert not delivered & {row.id for row in recovered}
        assert {row.recovery_source for row in recovered} == {"events_list"}
        anchor, walked_at = read_anchor(db.session)
        newest = max(e["created"] for e in harness.delivered_events())
        assert anchor == datetime.fromtimestamp(newest, UTC) and walked_at is not None
        subscription = harness.subscription(T)
        assert subscription.has_drift_detected is False and subscription.drift_checked_at is not None
    assert "SubscriptionCreated" in [row[0] for row in harness.ledger(T)]


def test_the_anchor_stays_put_when_stripe_fails_mid_walk(harness):
    harness.tenant(T)
    SCENARIOS["renew"](harness.demo, T)
    harness.settle(without(*DROPPED))
    gateway = gateway_of(harness)

    def outage_after_first_page(report):
        harness.server.stop()  # a real outage: the next page's request finds nobody listening

    with harness.app.app_context():
        report = walk_events(db.session, gateway, datetime.now(UTC), page_size=3, progress=outage_after_first_page)
        db.session.commit()
        assert not report.complete and report.error and report.pages == 1
        assert read_anchor(db.session) == (None, None)


def test_a_second_walk_within_a_minute_is_reused_and_a_repeat_walk_recovers_nothing_twice(harness):
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.settle(without(*DROPPED))
    gateway = gateway_of(harness)
    with harness.app.app_context():
        now = datetime.now(UTC)
        first = walk_events(db.session, gateway, now, page_size=4)
        db.session.commit()
        calls = gateway.calls
        reused = walk_unless_fresh(db.session, gateway, now)
        assert reused.reused and gateway.calls == calls
        again = walk_events(db.session, gateway, now, page_size=4)
        assert first.recovered >= len(DROPPED) and again.recovered == 0 and again.complete


def test_state_mismatch_is_found_and_a_sync_repairs_it(harness):
    """The projection says premium while Stripe bills standard (its update never replayed): drift, then healed."""
    harness.tenant(T)
    run = SCENARIOS["subscribe"](harness.demo, T)
    harness.settle()
    with harness.app.app_context():
        db.session.execute(update(Subscription).where(Subscription.tenant_id == T).values(plan="premium"))
        db.session.commit()
        subscription = db.session.scalar(select(Subscription).where(Subscription.tenant_id == T))
        live = drift.LiveSubscription("standard", False, None, "EUR")
        found = drift.state_discrepancies(subscription, live)
        assert [(d.kind, d.expected, d.actual) for d in found] == [("SubscriptionStateMismatch", "standard", "premium")]
    assert run.objects["subscription"]


def test_a_sync_of_another_currency_keeps_its_currency(harness_factory):
    """A DKK customer on a EUR platform: the sync refuses nothing, the rows stay in DKK and nothing drifts."""
    harness = harness_factory(currency="DKK")
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.settle()
    with harness.app.app_context():
        harness.app.config["PLATFORM_CURRENCY"] = "EUR"
        result = sync_job(T)
        assert "refused" not in result
        subscription = db.session.scalars(select(Subscription).where(Subscription.tenant_id == T)).one()
        assert not subscription.has_drift_detected, subscription.drift_discrepancies
    assert {row.currency for row in harness.rows(T) if row.amount_delta is not None} == {"DKK"}


def test_durable_kinds_from_local_facts(harness):
    """Clamped tax, a scheduled plan without price, Stripe and the ledger apart on the currency, payments without
    ledger rows."""
    from backoffice.billing.models import LedgerTip, PaymentTransaction
    from tests.factories import make_subscription, payment_values

    with harness.app.app_context():
        subscription = make_subscription(db.session, scheduled_plan="standard", current_price_currency="SEK")
        db.session.add(PaymentTransaction(**payment_values(subscription, amount=Decimal("0.00"),
                                                           amount_excluding_tax=Decimal("0.00"),
                                                           tax_amount=Decimal("12.25"), invoice_total=Decimal("0.00"))))
        db.session.flush()
        # Billed in SEK is no discrepancy by itself; a ledger whose latest row is in EUR is.
        assert "CurrencyMismatch" not in {d.kind for d in drift.durable_discrepancies(db.session, subscription)}
        db.session.add(LedgerTip(subscription_id=subscription.id, currency="EUR", committed_mrr=Decimal("49.00"),
                                 occurred_at=datetime(2026, 1, 1, tzinfo=UTC), position=0))
        db.session.flush()
        kinds = {d.kind: d.as_json()["severity"] for d in drift.durable_discrepancies(db.session, subscription)}
        assert kinds == {"MissingEvent": "Warning", "ScheduledPriceMissing": "Critical", "CurrencyMismatch": "Critical",
                         "AmountExcludingTaxClamped": "Warning"}
        db.session.rollback()


def test_the_cli_reconciles_an_account(harness):
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.settle(without(*DROPPED))
    result = harness.app.test_cli_runner().invoke(args=["billing", "reconcile", T])
    assert result.exit_code == 0, result.output
    assert "appended" in result.output and result.output.strip().endswith("clean")
    refused = harness.app.test_cli_runner().invoke(args=["billing", "reconcile", "ten_unknown"])
    assert refused.exit_code != 0 and "no_customer" in refused.output


def test_coverage_old_complete_history_is_clean_and_an_old_gap_is_unrecoverable(harness):
    """Two accounts subscribed 40 days ago: one with every event archived raises nothing; the other lost its
    subscription's creation event, which Stripe no longer lists: an unrecoverable gap, flagged Critical."""
    from backoffice.demo.scenarios import Scenario

    complete, gap = harness.tenant("ten_cov_complete"), harness.tenant("ten_cov_gap")
    first = Scenario(harness.demo, "coverage", complete)
    first.customer()
    first.subscribe("standard")
    harness.settle()
    second = Scenario(harness.demo, "coverage", gap)
    second.customer()
    second.subscribe("standard")
    harness.settle(without("customer.subscription.created"))
    first.advance(days=40)  # a renewal later; the creation events leave Stripe's 30-day list
    harness.settle()
    with harness.app.app_context():
        clean = sync_job(complete)
        assert clean["clean"], clean["discrepancies"]
        flagged = sync_job(gap)
        kinds = {d["kind"]: d["severity"] for d in flagged["discrepancies"]}
        assert kinds == {"MissingHistoricalEventUnrecoverable": "Critical"}, flagged["discrepancies"]
        assert harness.subscription(gap).has_drift_detected


def test_an_acknowledged_discrepancy_found_again_raises_no_flag_but_a_new_one_does(harness):
    from backoffice.billing.operations import acknowledge_drift
    from backoffice.operators.models import Operator

    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.settle()
    with harness.app.app_context():
        db.session.add(Operator(id="oid-ack", name="Ack", is_admin=True))
        subscription = db.session.scalar(select(Subscription).where(Subscription.tenant_id == T))
        found = [drift.Discrepancy("StripeEventPayloadDivergence", "another body", event_id="evt_1")]
        now = datetime.now(UTC)
        drift.record(db.session, subscription.id, found, now)
        db.session.commit()
        assert harness.subscription(T).has_drift_detected
        acknowledge_drift(db.session, T, "oid-ack", "known replay of an old delivery", now)
        db.session.commit()
        drift.record(db.session, subscription.id, found, now)  # the next check finds it again
        db.session.commit()
        again = harness.subscription(T)
        assert not again.has_drift_detected and again.drift_discrepancies[0]["acknowledged"] is True
        drift.record(db.session, subscription.id, [*found, drift.Discrepancy("CurrencyMismatch", "x", actual="SEK")], now)
        db.session.commit()
        assert harness.subscription(T).has_drift_detected


def test_a_ledger_row_that_a_fresh_replay_would_write_differently_is_reported_and_kept(harness):
    from backoffice.billing.models import BillingEvent
    from tests.factories import make_correction

    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.settle()
    with harness.app.app_context():
        created = db.session.scalar(select(BillingEvent).where(BillingEvent.tenant_id == T,
                                                               BillingEvent.event_type == "SubscriptionCreated"))
        make_correction(db.session, created, event_type="SubscriptionCreated", from_plan=None, to_plan="standard",
                        previous_amount=Decimal("0.00"), new_amount=Decimal("59.00"), amount_delta=Decimal("59.00"),
                        committed_mrr=Decimal("59.00"), movement="new")
        db.session.commit()
        result = sync_job(T)
        stale = [d for d in result["discrepancies"] if d["kind"] == "BillingEventDenormalizationStale"]
        assert stale and {d["event_id"] for d in stale} == {created.stripe_event_id}
        assert {(d["expected"], d["actual"]) for d in stale if d["message"].startswith("committed_mrr")} == {
            ("49.00", "59.00")}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_sync_after_each_lifecycle_finds_the_ledger_as_a_fresh_replay_writes_it(harness, name):
    harness.tenant(T)
    SCENARIOS[name](harness.demo, T)
    harness.settle()
    with harness.app.app_context():
        result = sync_job(T)
        kinds = {d["kind"] for d in result.get("discrepancies", [])}
        assert "BillingEventDenormalizationStale" not in kinds, result["discrepancies"]
        assert not kinds & {"MissingEvent", "MissingHistoricalEvent", "SubscriptionStateMismatch"}, result["discrepancies"]


def test_a_price_changed_behind_backoffices_back_is_a_critical_state_mismatch(harness):
    harness.tenant(T)
    run = SCENARIOS["subscribe"](harness.demo, T)
    harness.settle()
    live = harness.sandbox.store.get("subscription", run.objects["subscription"])
    for item in live["items"]["data"]:  # edited in Stripe's store: no event tells Backoffice
        item["price"] = {**item["price"], "id": item["price"]["id"], "unit_amount": 5900}
    with harness.app.app_context():
        result = sync_job(T)
        mismatches = [(d["message"], d["expected"], d["actual"], d["severity"]) for d in result["discrepancies"]]
        assert ("price differs from Stripe", "59.00", "49.00", "Critical") in mismatches
