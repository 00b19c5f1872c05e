"""Two currencies and a rate change, through the sandbox and the webhook: a EUR customer and a USD one on a EUR
platform, the ECB's USD rate moving from 1.10 to 1.05 on 20 January 2026. Worked by hand:

  1 Jan   A subscribes to standard, 49.00 EUR                        MRR 49.00
  10 Jan  B subscribes to standard, 49.00 USD: new 49 ÷ 1.10 = 44.55   MRR 93.55
  20 Jan  1 EUR = 1.05 USD: B's 49 USD are 46.67 EUR                 MRR 95.67, of which FX +2.12
"""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backoffice.demo.scenarios import Scenario
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.extensions import db
from backoffice.fx import rates
from backoffice.read import dashboard, saas_metrics
from tests.billing.harness import D
from tests.stripe_sandbox.billing_helpers import at

ECB = ["Date,USD,DKK\n", "2025-12-31,1.1000,7.4700\n", "2026-01-20,1.0500,7.4600\n", "2026-02-10,1.0000,7.4500\n"]


@pytest.fixture
def two_currencies(harness):
    harness.tenant("ten_fx_A", "FX A")
    harness.tenant("ten_fx_B", "FX B")
    euro = Scenario(harness.demo, "A", "ten_fx_A", track_events=False)
    euro.customer()
    euro.subscribe("standard")
    harness.demo.advance_to(at(2026, 1, 10))
    dollars = Scenario(StripeDemo.connect(harness.server.url, harness.sandbox.settings.secret_key, "USD"), "B",
                       "ten_fx_B", track_events=False)
    dollars.customer(country="US")
    dollars.subscribe("standard")
    harness.settle()
    with harness.app.app_context():
        rates.refresh(db.session, rates.parse(ECB))
        db.session.commit()
    return harness


def test_each_row_keeps_its_currency(two_currencies):
    assert {row.currency for row in two_currencies.rows("ten_fx_B") if row.amount_delta is not None} == {"USD"}
    assert {row.currency for row in two_currencies.rows("ten_fx_A") if row.amount_delta is not None} == {"EUR"}


def test_mrr_converts_at_the_rate_of_the_day_shown(two_currencies):
    with two_currencies.app.app_context():
        assert dashboard.mrr_at(db.session, "EUR", [date(2026, 1, 9), date(2026, 1, 10), date(2026, 1, 19),
                                                    date(2026, 1, 20), date(2026, 1, 31)]) == [
            D("49.00"), D("93.55"), D("93.55"), D("95.67"), D("95.67")]
        # In another reporting currency the same rule: A's 49 EUR at 7.46 DKK, B's 49 USD at 7.46 ÷ 1.05.
        assert dashboard.mrr_at(db.session, "DKK", [date(2026, 1, 31)]) == [D("365.54") + D("348.13")]


def test_the_movements_sum_to_the_change_with_the_rates_own_movement(two_currencies):
    with two_currencies.app.app_context():
        period = dashboard.window(30, datetime(2026, 1, 31, 12, tzinfo=UTC))  # 2–31 January
        moves = dashboard.mrr_movements(db.session, "EUR", period)
        assert (moves.start, moves.end) == (D("49.00"), D("95.67"))
        assert moves.amounts == {"new": D("44.55"), "fx": D("2.12")}
        assert sum(moves.amounts.values()) == moves.change
        # Over one day with no rate change, nothing is FX; the day the rate moved, only FX is.
        quiet = dashboard.mrr_movements(db.session, "EUR", dashboard.window(7, datetime(2026, 1, 16, tzinfo=UTC)))
        assert quiet.amounts == {"new": D("44.55")} and quiet.change == D("44.55")
        moved = dashboard.mrr_movements(db.session, "EUR", dashboard.window(7, datetime(2026, 1, 25, tzinfo=UTC)))
        assert moved.amounts == {"fx": D("2.12")} and moved.change == D("2.12")


def test_the_metrics_convert_at_each_months_end_and_say_what_rates_moved(two_currencies):
    """The SaaS metrics count a month at its end: January's MRR is 49.00 + 49 USD at 1.05 = 95.67, all of it new;
    in February nothing is billed anew, and the dollar at par (10 February) adds 2.33 that is FX alone."""
    with two_currencies.app.app_context():
        jan, feb = saas_metrics.metrics(db.session, "EUR", date(2026, 2, 28), 2).months
    assert (jan.mrr_start, jan.mrr_end, jan.paying_end) == (0, D("95.67"), 2)
    assert jan.movements["new"] == D("95.67") and jan.movements["fx"] == 0
    assert (feb.mrr_start, feb.mrr_end, feb.paying_end) == (D("95.67"), D("98.00"), 2)
    assert feb.movements["fx"] == D("2.33") and sum(feb.movements.values()) == feb.mrr_end - feb.mrr_start
    # NRR at constant rates: the rate moved, the accounts did not.
    assert (feb.nrr, feb.grr) == (1, 1)


def test_a_missing_rate_is_said_not_guessed(harness):
    harness.tenant("ten_fx_B", "FX B")
    dollars = Scenario(StripeDemo.connect(harness.server.url, harness.sandbox.settings.secret_key, "USD"), "B",
                       "ten_fx_B", track_events=False)
    dollars.customer(country="US")
    dollars.subscribe("standard")
    harness.settle()
    with harness.app.app_context(), pytest.raises(rates.MissingRate, match="no exchange rate for USD"):
        dashboard.mrr_at(db.session, "EUR", [date(2026, 1, 2)])
    assert Decimal("49.00") in {row.new_amount for row in harness.rows("ten_fx_B")}
