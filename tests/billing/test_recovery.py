"""Disaster recovery (DESIGN §4.11) end to end: the sandbox, the real webhook, the archive, the replay, the Sync."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from backoffice.billing.models import BillingEvent, StripeEventState, Subscription
from backoffice.billing.reconcile.recovery import recovery_offer
from backoffice.billing.reconcile.tasks import sync_job
from backoffice.billing.replay.verify import verify_ledger
from backoffice.demo.scenarios import Scenario
from backoffice.extensions import db
from backoffice.operators.models import Operator, OperatorAction
from tests.billing.test_reconcile import without

ADMIN = "oid-recovery-admin"


def offer_of(harness, tenant_id):
    with harness.app.app_context():
        subscription = db.session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id))
        return recovery_offer(db.session, subscription, datetime.now(UTC))


def ledger_size(harness, tenant_id):
    with harness.app.app_context():
        return db.session.scalar(select(func.count()).where(BillingEvent.tenant_id == tenant_id))


def admin(harness):
    with harness.app.app_context():
        db.session.add(Operator(id=ADMIN, name="Recovery admin", is_admin=True))
        db.session.commit()


def lifecycle(scenario: Scenario) -> None:
    scenario.subscribe("standard")
    scenario.change_plan("premium")
    scenario.past_period_end()


def test_archived_events_without_ledger_rows_are_offered_and_replayed_exactly_once(harness):
    """A ledger restored from a backup older than the archive: processed events, more than 30 days old, with no
    row. Nothing replays them by itself; the recovery writes exactly what a normal replay wrote for a twin."""
    twin, lost = harness.tenant("ten_dr_twin"), harness.tenant("ten_dr_lost")
    reference = Scenario(harness.demo, "dr", twin)
    reference.customer()
    lifecycle(reference)
    harness.settle()
    scenario = Scenario(harness.demo, "dr", lost)
    scenario.customer()
    harness.settle()  # the customer is linked to the account
    before = ledger_size(harness, lost)
    lifecycle(scenario)
    harness.deliver()
    with harness.app.app_context():  # archived and marked processed; the ledger rows never written
        db.session.execute(update(StripeEventState).where(StripeEventState.status == "pending").values(status="processed"))
        db.session.commit()
    harness.replay()
    assert ledger_size(harness, lost) == before
    offer = offer_of(harness, lost)
    assert offer.offered and not offer.gaps and offer.archived_count == len(offer.archived) > 3
    assert offer.default_cutoff == offer.archived[0].at - timedelta(seconds=1)
    # A Sync alone leaves them alone: they are older than Stripe's 30-day window.
    with harness.app.app_context():
        sync_job(lost)
    assert ledger_size(harness, lost) == before

    admin(harness)
    with harness.app.app_context():
        result = sync_job(lost, ADMIN, "ledger restored from the 1 March backup", offer.default_cutoff.isoformat())
    assert result["appended"] == offer.archived_count and result["recovery"] == {
        "cutoff": offer.default_cutoff.isoformat(), "gaps": 0}
    assert harness.ledger(lost) == harness.ledger(twin)
    assert not offer_of(harness, lost).offered
    with harness.app.app_context():
        again = sync_job(lost, ADMIN, "run twice by mistake", offer.default_cutoff.isoformat())
        assert again["appended"] == 0
        actions = db.session.scalars(select(OperatorAction).where(OperatorAction.action == "disaster_recovery")
                                     .order_by(OperatorAction.at)).all()
        assert [a.reason for a in actions] == ["ledger restored from the 1 March backup", "run twice by mistake"]
        assert actions[0].parameters == {"cutoff": offer.default_cutoff.isoformat()}
        assert actions[0].result["appended"] == offer.archived_count
        assert list(verify_ledger(db.session, _rules(harness), customers=[harness.subscription(lost).stripe_customer_id])) == []
    assert harness.ledger(lost) == harness.ledger(twin)


def test_a_cutoff_replays_only_what_follows_it(harness):
    lost = harness.tenant("ten_dr_partial")
    scenario = Scenario(harness.demo, "dr", lost)
    scenario.customer()
    harness.settle()
    lifecycle(scenario)
    harness.deliver()
    with harness.app.app_context():
        db.session.execute(update(StripeEventState).where(StripeEventState.status == "pending").values(status="processed"))
        db.session.commit()
    offer = offer_of(harness, lost)
    newest = offer.archived[-1]
    cutoff = newest.at - timedelta(seconds=1)
    later = [event for event in offer.archived if event.at > cutoff]
    with harness.app.app_context():
        result = sync_job(lost, None, None, cutoff.isoformat())
    assert result["appended"] == len(later)
    left = offer_of(harness, lost)
    assert left.archived_count == offer.archived_count - len(later)


def test_an_old_gap_gets_a_baseline_at_the_cutoff_and_the_account_comes_clean(harness):
    """The subscription's creation event never reached the archive and Stripe lists it no more: a gap. The
    recovery writes one LedgerBaseline row at the cutoff with the forward MRR of the latest invoice's items, sets
    history_complete_from, and the next Sync is clean; a second run appends nothing."""
    gap = harness.tenant("ten_dr_gap")
    scenario = Scenario(harness.demo, "dr", gap)
    scenario.customer()
    subscription_id = scenario.subscribe("standard")
    harness.settle(without("customer.subscription.created"))
    scenario.advance(days=40)  # a renewal later; the creation event leaves Stripe's 30-day list
    harness.settle()
    with harness.app.app_context():
        flagged = sync_job(gap)
    assert {d["kind"] for d in flagged["discrepancies"]} >= {"MissingHistoricalEventUnrecoverable"}
    # Without its creation the ledger holds no MRR until the renewal, which it takes for an upgrade from 0.
    assert [row[0] for row in harness.ledger(gap, hide_noop=True)] == [
        "BillingInfoAdded", "PaymentMethodUpdated", "SubscriptionUpgraded", "SubscriptionRenewed"]
    offer = offer_of(harness, gap)
    assert offer.offered and [g.resource_id for g in offer.gaps] == [subscription_id]
    created = datetime.fromtimestamp(harness.demo.client.v1.subscriptions.retrieve(subscription_id).created, UTC)
    assert offer.default_cutoff == created

    admin(harness)
    with harness.app.app_context():
        result = sync_job(gap, ADMIN, "subscription predates the webhook", offer.default_cutoff.isoformat())
    assert result["clean"], result["discrepancies"]
    assert result["recovery"]["gaps"] == 1 and result["recovery"]["baseline"] == "49.00"
    baseline_id = f"baseline:{subscription_id}:{int(created.timestamp())}"
    assert result["recovery"]["baseline_id"] == baseline_id
    baseline = harness.row_of(baseline_id)
    assert baseline == ("LedgerBaseline", None, "standard", Decimal("0.00"), Decimal("49.00"), Decimal("49.00"),
                        Decimal("49.00"), "other")
    # The renewal's update is no upgrade any more: the baseline already carried the 49.00 (a correction says so).
    assert [row[0] for row in harness.ledger(gap, hide_noop=True)] == [
        "BillingInfoAdded", "PaymentMethodUpdated", "LedgerBaseline", "SubscriptionRenewed"]
    assert all(row[6] == Decimal("49.00") for row in harness.ledger(gap)[-3:])
    sub = harness.subscription(gap)
    assert sub.history_complete_from == created and not sub.has_drift_detected
    assert sub.forward_mrr == Decimal("49.00")
    size = ledger_size(harness, gap)
    with harness.app.app_context():
        again = sync_job(gap, ADMIN, "twice", offer.default_cutoff.isoformat())
        assert again["appended"] == 0 and again["clean"] and again["recovery"]["gaps"] == 0
        clean = sync_job(gap)
        assert clean["clean"] and clean["appended"] == 0
        assert list(verify_ledger(db.session, _rules(harness), customers=[sub.stripe_customer_id])) == []
    assert ledger_size(harness, gap) == size
    assert not offer_of(harness, gap).offered


@pytest.mark.parametrize("when", ["future", "before"])
def test_a_cutoff_the_recovery_cannot_use_is_refused(harness, when):
    tenant = harness.tenant("ten_dr_refused")
    scenario = Scenario(harness.demo, "dr", tenant)
    scenario.customer()
    scenario.subscribe("standard")
    harness.settle()
    complete_from = datetime(2026, 1, 2, tzinfo=UTC)
    with harness.app.app_context():
        db.session.execute(update(Subscription).where(Subscription.tenant_id == tenant)
                           .values(history_complete_from=complete_from))
        db.session.commit()
        cutoff = datetime.now(UTC) + timedelta(days=1) if when == "future" else complete_from - timedelta(days=1)
        result = sync_job(tenant, None, None, cutoff.isoformat())
    assert result["refused"] == {"future": "cutoff_future", "before": "cutoff_before_complete"}[when]


def _rules(harness):
    from backoffice.billing.replay import Replayer, ReplaySettings
    from backoffice.billing.replay.tasks import gateway

    return Replayer(db.session, ReplaySettings.from_config(harness.app.config), gateway()).rules


def test_the_cli_runs_the_same_recovery_audited(harness):
    gap = harness.tenant("ten_dr_cli")
    scenario = Scenario(harness.demo, "dr", gap)
    scenario.customer()
    scenario.subscribe("standard")
    harness.settle(without("customer.subscription.created"))
    scenario.advance(days=40)
    harness.settle()
    admin(harness)
    runner = harness.app.test_cli_runner()
    unaudited = runner.invoke(args=["billing", "reconcile", gap, "--recover-from", "2026-01-01T00:00:00"])
    assert unaudited.exit_code != 0 and "--operator and --reason" in unaudited.output
    done = runner.invoke(args=["billing", "reconcile", gap, "--recover-from", "2026-01-01T00:00:00",
                               "--operator", ADMIN, "--reason", "predates the webhook"])
    assert done.exit_code == 0, done.output
    assert "disaster recovery from 2026-01-01T00:00:00+00:00: 1 gap(s), baseline 49.00" in done.output
    assert "clean" in done.output
