"""The ledger as operators read it: effective rows, NoOp hidden, the seed's plan-transition display rules."""
from __future__ import annotations

from datetime import timedelta

from backoffice.billing.lists import history
from tests.factories import OCCURRED_AT, make_billing_event, make_correction, make_subscription, make_tenant


def test_noop_hidden_corrections_applied_newest_first(db_session):
    subscription = make_subscription(db_session, tenant_id=make_tenant(db_session, name="Ledgered").id)
    created = make_billing_event(db_session, subscription=subscription, event_type="SubscriptionCreated", from_plan=None,
                                 to_plan="standard", previous_amount=0, new_amount=49, amount_delta=49, committed_mrr=49,
                                 movement="new", occurred_at=OCCURRED_AT - timedelta(days=30))
    make_billing_event(db_session, subscription=subscription, event_type="NoOp", from_plan="standard",
                       to_plan="standard", previous_amount=None, new_amount=None, amount_delta=None,
                       committed_mrr=49, movement=None, occurred_at=OCCURRED_AT - timedelta(days=10))
    cancelled = make_billing_event(db_session, subscription=subscription, position=2)
    make_correction(db_session, cancelled)
    page = history.list_ledger(db_session, history.LedgerFilter(tenant_id=subscription.tenant_id))
    assert [(row.event_type, row.corrected) for row in page.rows] == [("SubscriptionExpired", True),
                                                                        ("SubscriptionCreated", False)]
    assert page.rows[1].id == created.id


def entry(event_type, from_plan, to_plan):
    return history.LedgerEntry("b", "t", "T", "evt", event_type, from_plan, to_plan, None, 0, None, "EUR", OCCURRED_AT,
                               False)


def test_transitions_are_the_rows_own_plans_and_a_missing_plan_is_unknown_not_basis():
    assert entry("SubscriptionCancelled", "premium", "premium").transition == ("premium", "premium")
    assert entry("SubscriptionImmediatelyCancelled", "standard", "basis").transition == ("standard", "basis")
    assert entry("SubscriptionExpired", None, "basis").transition == (None, "basis")
    assert entry("SubscriptionCreated", None, "standard").transition == (None, "standard")
    assert entry("SubscriptionUpgraded", "standard", "premium").transition == ("standard", "premium")
    assert entry("SubscriptionRenewed", "premium", None).transition == ("premium", None)
    assert entry("Unclassified", None, None).transition == (None, None)
