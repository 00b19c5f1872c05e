"""account_index, the accounts list's read model: the database keeps it equal to tenants ⋈ subscriptions."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from backoffice.billing.models import ACCOUNT_STATUSES
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from tests.factories import make_billing_event, make_subscription, make_tenant

RECOMPUTED = text("""
    SELECT t.id, s.id, lower(t.name), t.plan, t.country, t.created_at, t.deleted_at IS NOT NULL,
           coalesce(array_position(CAST(:order AS text[]), s.account_status) - 1, 4), coalesce(s.forward_mrr, 0),
           s.current_period_end, coalesce(s.has_drift_detected, false), coalesce(s.current_price_amount IS NOT NULL, false),
           EXISTS (SELECT 1 FROM billing_events e WHERE e.subscription_id = s.id)
    FROM tenants t LEFT JOIN subscriptions s ON s.tenant_id = t.id ORDER BY t.id""")
STORED = text("""
    SELECT tenant_id, subscription_id, name_key, plan, country, created_at, deleted, status_rank, mrr, renewal_at, drift,
           priced, ledgered
    FROM account_index ORDER BY tenant_id""")


def assert_in_step(session):
    assert session.execute(STORED).all() == session.execute(RECOMPUTED, {"order": list(ACCOUNT_STATUSES)}).all()


def test_every_write_to_tenants_and_subscriptions_reaches_the_index(db_session):
    tenant = make_tenant(db_session, name="Alpha ApS", country="DK")
    assert_in_step(db_session)
    subscription = make_subscription(db_session, tenant_id=tenant.id, account_status="active", forward_mrr=Decimal("49"),
                                     current_period_end=datetime(2026, 5, 1, tzinfo=UTC))
    assert_in_step(db_session)
    for status in ACCOUNT_STATUSES:
        subscription.account_status = status
        db_session.flush()
        assert db_session.execute(text("SELECT status_rank FROM account_index WHERE tenant_id = :t"),
                                  {"t": tenant.id}).scalar() == ACCOUNT_STATUSES.index(status)
    make_billing_event(db_session, subscription=subscription)  # its first ledger row: no longer unsynced
    assert_in_step(db_session)
    subscription.forward_mrr, subscription.has_drift_detected = Decimal("99.00"), True
    subscription.current_price_amount = Decimal("99.00")
    subscription.current_period_end = None
    tenant.name, tenant.plan, tenant.country = "Beta A/S", "premium", None
    db_session.flush()
    assert_in_step(db_session)
    tenant.deleted_at = tenant.created_at + timedelta(days=3)
    db_session.flush()
    assert_in_step(db_session)
    other = make_tenant(db_session, name="Gamma")
    subscription.tenant_id = other.id  # a subscription moved to another tenant leaves its old row bare
    db_session.flush()
    assert_in_step(db_session)


def test_a_real_replay_keeps_it_in_step(harness):
    for index, name in enumerate(("subscribe", "downgrade_scheduled_then_released", "cancel_at_period_end_then_expire",
                                  "payment_failed_then_suspended")):
        SCENARIOS[name](harness.demo, harness.tenant(f"ten_index_{index}"))
    harness.settle()
    with harness.app.app_context():
        assert_in_step(db.session)
        ranks = db.session.execute(text("SELECT count(DISTINCT status_rank) FROM account_index")).scalar()
        assert ranks >= 2
