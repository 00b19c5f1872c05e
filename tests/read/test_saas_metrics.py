"""The SaaS metrics on lifecycles worked out by hand: five accounts driven through the Stripe sandbox, their
events through the signed webhook and the replay, then every figure of January to March 2026 checked against
the numbers below (EUR, prices ex-VAT: standard 49.00, premium 99.00, premium yearly 990.00 = 82.50 a month).

  A  standard from 1 Jan; upgraded to premium on 20 Mar                      expansion +50.00 in March
  B  premium from 1 Jan; cancels at period end on 9 Jan; ends 1 Feb          churn −99.00 in February, not January
  C  premium yearly from 1 Jan                                               new +82.50, normalised to a month
  D  standard from 1 Jan; cancels on 9 Jan, changes its mind on 13 Jan      nothing: no churn, no reactivation
  E  standard from 1 Jan; cancelled at once on 15 Feb; premium from 5 Mar    churn −49.00 (Feb), reactivation +99.00 (Mar)
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from backoffice.demo.scenarios import Scenario
from backoffice.extensions import db
from backoffice.read import saas_metrics
from tests.billing.harness import D
from tests.stripe_sandbox.billing_helpers import at

JAN, FEB, MAR = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)


@pytest.fixture(scope="module")
def lifecycle():
    """The lifecycles above, as the functions that drive them (the harness is per test)."""
    def run(harness):
        demo = harness.demo
        accounts = {}
        for name, plan, interval in (("A", "standard", "month"), ("B", "premium", "month"),
                                     ("C", "premium", "year"), ("D", "standard", "month"),
                                     ("E", "standard", "month")):
            harness.tenant(f"ten_metrics_{name}", f"Metrics {name}")
            accounts[name] = Scenario(demo, name, f"ten_metrics_{name}", track_events=False)
            accounts[name].customer()
            accounts[name].subscribe(plan, interval)
        demo.advance_to(at(2026, 1, 9))
        accounts["B"].set_cancel_at_period_end(True)
        accounts["D"].set_cancel_at_period_end(True)
        demo.advance_to(at(2026, 1, 13))
        accounts["D"].set_cancel_at_period_end(False)
        demo.advance_to(at(2026, 2, 15))
        e = accounts["E"]
        e.client.v1.subscriptions.cancel(e.run.objects["subscription"])
        demo.advance_to(at(2026, 3, 5))
        e.subscribe("premium")
        demo.advance_to(at(2026, 3, 20))
        accounts["A"].change_plan("premium")
        harness.settle()
    return run


@pytest.fixture
def figures(harness, lifecycle):
    lifecycle(harness)
    with harness.app.app_context():
        return saas_metrics.metrics(db.session, "EUR", date(2026, 3, 31), 3)


def money(value) -> Decimal:
    return D(value)


def test_the_months_movements_and_rates(figures):
    jan, feb, mar = figures.months
    assert [m.month for m in figures.months] == [JAN, FEB, MAR]

    assert (jan.mrr_start, jan.mrr_end, jan.paying_start, jan.paying_end) == (0, money("328.50"), 0, 5)
    assert jan.movements == {"new": money("328.50"), "expansion": 0, "contraction": 0, "churn": 0,
                             "reactivation": 0, "other": 0, "fx": 0}  # one currency: rates move nothing
    assert (jan.new_logos, jan.churned_logos) == (5, 0)
    assert jan.logo_churn_rate is None and jan.gross_mrr_churn_rate is None  # nothing paid at the start
    assert jan.arr == money("3942.00") and jan.arpa == Decimal("65.70")

    # B's cancellation counts when its paid month ends (1 Feb); E's immediate one on its day.
    assert (feb.mrr_start, feb.mrr_end, feb.paying_start, feb.paying_end) == (
        money("328.50"), money("180.50"), 5, 3)
    assert feb.movements["churn"] == money("-148.00") and feb.churned_logos == 2
    assert feb.logo_churn_rate == Decimal("0.4")
    assert round(feb.gross_mrr_churn_rate, 6) == round(Decimal("148") / Decimal("328.50"), 6)
    assert feb.net_mrr_churn_rate == feb.gross_mrr_churn_rate
    assert feb.nrr == feb.grr == Decimal("180.50") / Decimal("328.50")

    # E comes back (reactivation, not new), A expands; E was not paying at the start, so NRR leaves it out.
    assert (mar.mrr_start, mar.mrr_end, mar.paying_start, mar.paying_end) == (
        money("180.50"), money("329.50"), 3, 4)
    assert (mar.movements["reactivation"], mar.movements["expansion"], mar.movements["new"]) == (
        money("99.00"), money("50.00"), 0)
    assert (mar.new_logos, mar.churned_logos, mar.gross_mrr_churn_rate) == (1, 0, 0)
    assert mar.net_mrr_churn_rate == -Decimal("149") / Decimal("180.50")
    assert mar.nrr == Decimal("230.50") / Decimal("180.50") and mar.grr == 1

    for month in figures.months:  # the movements sum to the change, every month
        assert sum(month.movements.values()) == month.mrr_end - month.mrr_start


def test_cohorts_ltv_and_lifetime(figures):
    (january,) = figures.cohorts  # everyone started paying in January
    assert (january.cohort, january.accounts, january.mrr) == (JAN, 5, money("328.50"))
    assert january.cells == [(5, money("328.50")), (3, money("180.50")), (4, money("329.50"))]
    assert january.logos(1) == Decimal("0.6") and january.revenue(2) == Decimal("329.50") / Decimal("328.50")

    # The averages use the whole months before March: January has no base, so February alone.
    assert figures.average_logo_churn_rate == Decimal("0.4")
    assert figures.lifetime_months == Decimal("2.5")
    expected_ltv = (Decimal("329.50") / 4) / (Decimal("148") / Decimal("328.50"))
    assert figures.ltv == expected_ltv.quantize(Decimal("0.01"))


def test_the_ledger_counts_the_pending_cancellations_when_asked(harness, lifecycle, figures):
    """The dashboard's committed MRR took B's churn (and D's churn and reactivation) in January; the metrics
    wait for the period's end. Both agree once it has passed."""
    from backoffice.read.dashboard import mrr_at

    with harness.app.app_context():
        committed = mrr_at(db.session, "EUR", [date(2026, 1, 31), date(2026, 3, 31)])
    assert committed == [money("229.50"), money("329.50")]
    assert figures.months[0].mrr_end == money("328.50") and figures.months[2].mrr_end == committed[1]


def test_twelve_month_retention_needs_a_year(harness, lifecycle):
    lifecycle(harness)
    with harness.app.app_context():
        # From the end of January 2026 to the end of March: five paying then; four of them (A, C, D, E) now.
        span = saas_metrics.retention(db.session, "EUR", FEB, MAR, date(2026, 3, 31))
        assert (span.accounts, span.mrr_start, span.mrr_end) == (5, money("328.50"), money("329.50"))
        assert span.mrr_kept == money("49.00") + money("82.50") + money("49.00") + money("49.00")
        assert span.grr == span.mrr_kept / Decimal("328.50") and span.nrr == Decimal("329.50") / Decimal("328.50")
        year = saas_metrics.metrics(db.session, "EUR", date(2026, 3, 31), 3).retention_12
        assert (year.accounts, year.nrr, year.grr) == (0, None, None)  # nobody paid in March 2025


def test_the_months_before_a_window_come_from_the_month_totals_compacted_or_not(harness, lifecycle):
    """February and March alone start from the end of January: five paying, 328.50 (A 49, B 99, C 82.50, D 49,
    E 49), read from account_month_totals. Its rows are appended per write until folded; folding changes no
    figure, and leaves one row per month and currency."""
    from sqlalchemy import func, select

    from backoffice.billing.models import account_month_totals as totals
    from backoffice.housekeeping import compact_metric_totals

    lifecycle(harness)
    with harness.app.app_context():
        def shown():
            feb, mar = saas_metrics.monthly(db.session, "EUR", [FEB, MAR], date(2026, 3, 31))
            span = saas_metrics.retention(db.session, "EUR", FEB, MAR, date(2026, 3, 31))
            return ((feb.mrr_start, feb.paying_start, mar.mrr_end, mar.paying_end),
                    (span.accounts, span.mrr_start, span.mrr_end, span.mrr_kept))

        def rows():
            return db.session.execute(select(func.count(), func.count(func.distinct(totals.c.month)))).one()

        before = shown()
        assert before[0] == (money("328.50"), 5, money("329.50"), 4)
        appended, months = rows()
        assert appended > months  # each replay's statements appended their own changes
        assert compact_metric_totals() == appended - months
        assert rows() == (months, months) and shown() == before
        assert compact_metric_totals() == 0
