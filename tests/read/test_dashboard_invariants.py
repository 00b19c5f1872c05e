"""The dashboard's invariants over generated lifecycles (DESIGN §4.9, §4.10): random mixes of the demo's
scenarios, each on its own account, delivered through the real webhook in a shuffled order and replayed.

- the Blended MRR tile = the MRR trend's last point = the movements' end, and = Σ forward MRR when the books agree;
- the revenue chart's last point = the Total revenue tile = Σ lifetime values = net revenue from the payments;
- the MRR movements of any period sum to the MRR change over it.
"""
from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from backoffice.billing.ledger import revenue
from backoffice.billing.reconcile.health import mrr_consistency
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from backoffice.read import dashboard as queries
from tests.billing.harness import shuffled


@pytest.mark.parametrize("seed", range(4))
def test_trend_tiles_and_movements_agree_for_any_mix_of_lifecycles(harness, seed):
    rng = random.Random(seed)
    names = rng.sample(sorted(SCENARIOS), 6)
    for index, name in enumerate(names):
        SCENARIOS[name](harness.demo, harness.tenant(f"ten_mix_{index}"))
    harness.settle(shuffled(seed))
    now = datetime.now(UTC)
    with harness.app.app_context():
        session = db.session
        assert mrr_consistency(session, "EUR").consistent, names
        for days in queries.PERIODS:
            period = queries.window(days, now)
            kpis = queries.kpis(session, "EUR", period)
            trend = queries.mrr_trend(session, "EUR", period)
            assert trend.last == kpis.blended_mrr == kpis.mrr_end == kpis.forward_mrr, (names, days)
            assert not kpis.forward_differs and kpis.mismatches is None, (names, days)
            money = queries.revenue_trend(session, "EUR", period)
            assert money.last == kpis.total_revenue == sum(revenue.lifetime_values(session, "EUR").values()) \
                == revenue.total_revenue(session, "EUR"), (names, days)
            moves = queries.mrr_movements(session, "EUR", period)
            assert sum(moves.amounts.values(), start=queries.ZERO) == moves.change, (names, days)
        # Over a year, longer than the whole history, the movements add up to today's MRR from nothing.
        year = queries.mrr_movements(session, "EUR", queries.Window(366, now))
        assert year.start == queries.ZERO and sum(year.amounts.values(), start=queries.ZERO) == kpis.blended_mrr
