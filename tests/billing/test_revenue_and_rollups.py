"""Net revenue (one query, three consumers) and the MRR rollup against the ledger (DESIGN §4.9–§4.10)."""
from datetime import UTC, date

import pytest

from backoffice.billing.ledger import revenue
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from backoffice.read_models.mrr_daily import compare
from tests.billing.harness import D, shuffled

NET = {  # ex-VAT, Danish customer (25 % VAT)
    "subscribe": D(49),
    "full_refund": D(0),
    "partial_refund": D("74.26"),  # 99.00 − a quarter of 123.75 (30.93) at 99/123.75
    "credit_note_with_refund": D("24.50"),  # 49.00 − half of 61.25 (30.62) at 49/61.25
    "credit_note_then_void": D(49),  # the voided credit note counts no more
    "renew": D(98),
}


@pytest.mark.parametrize("name", sorted(NET))
def test_net_revenue_tile_chart_and_lifetime_value_agree(harness, app, name):
    tenant = f"ten_{name}"
    harness.tenant(tenant)
    SCENARIOS[name](harness.demo, tenant)
    harness.settle()
    with app.app_context():
        total = revenue.total_revenue(db.session, "EUR")
        series = revenue.cumulative_series(db.session, "EUR", date(2025, 12, 1), date(2026, 3, 31))
        ltv = revenue.lifetime_value(db.session, "EUR", tenant)
        by_tenant = revenue.lifetime_values(db.session, "EUR")
    assert total == NET[name]
    assert series[-1][1] == total == ltv == sum(by_tenant.values())
    assert series[0][1] == 0


def test_a_refund_subtracts_on_its_own_day(harness, app):
    harness.tenant("ten_refund")
    SCENARIOS["full_refund"](harness.demo, "ten_refund")
    harness.settle()
    with app.app_context():
        series = dict(revenue.cumulative_series(db.session, "EUR", date(2026, 1, 1), date(2026, 1, 5)))
    assert series[date(2026, 1, 1)] == D(99)  # paid on the first
    assert series[date(2026, 1, 3)] == D(0)  # refunded two days later


def test_the_rollup_follows_the_ledger_through_late_events_and_rebuilds_clean(harness, app):
    for index, name in enumerate(("downgrade_takes_effect", "payment_failed_then_recovered", "cancel_at_period_end_then_expire")):
        harness.tenant(f"ten_roll_{index}")
        SCENARIOS[name](harness.demo, f"ten_roll_{index}")
    harness.sandbox.webhooks.wait_idle()
    deliveries = list(harness.receiver.received)
    for start in range(0, len(deliveries), 7):  # delivered out of order, replayed in between: corrections
        batch = shuffled(start)(deliveries[start:start + 7])[::-1]
        for received in batch:
            harness.client.post("/webhooks/stripe", data=received.body, headers={
                "Stripe-Signature": received.headers["Stripe-Signature"], "Content-Type": "application/json"})
        harness.replay()
    with app.app_context():
        assert compare(db.session, "EUR") == []
    result = app.test_cli_runner().invoke(args=["billing", "rebuild-rollups"])
    assert result.exit_code == 0 and "0 difference(s)" in result.output


def mrr_at_end_of(app, day):
    """MRR at the end of a day from the ledger itself: each subscription's latest effective committed MRR."""
    from datetime import datetime, time, timedelta

    from sqlalchemy import select
    from sqlalchemy.dialects.postgresql import distinct_on

    from backoffice.billing.models import effective_billing_events as view

    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    with app.app_context():
        latest = (select(view.c.committed_mrr).ext(distinct_on(view.c.subscription_id))
                  .where(view.c.occurred_at < end)
                  .order_by(view.c.subscription_id, view.c.occurred_at.desc(), view.c.position.desc()))
        return sum(db.session.scalars(latest), D(0))


def test_movements_over_any_period_sum_to_the_mrr_change(harness, app):
    from sqlalchemy import func, select

    from backoffice.billing.models import MrrDaily

    for index, name in enumerate(("upgrade_with_proration", "downgrade_takes_effect", "cancel_at_period_end_then_expire",
                                  "payment_failed_then_suspended", "forever_coupon")):
        harness.tenant(f"ten_move_{index}")
        SCENARIOS[name](harness.demo, f"ten_move_{index}")
    harness.settle(shuffled(3))
    days = [date(2025, 12, 31), date(2026, 1, 1), date(2026, 1, 15), date(2026, 2, 1), date(2026, 2, 20), date(2026, 4, 1)]
    for start, end in zip(days, days[1:], strict=False):
        with app.app_context():
            moved = db.session.scalar(select(func.coalesce(func.sum(MrrDaily.delta_sum), 0))
                                      .where(MrrDaily.day > start, MrrDaily.day <= end))
        assert D(moved) == mrr_at_end_of(app, end) - mrr_at_end_of(app, start), (start, end)
    assert mrr_at_end_of(app, days[-1]) > 0
