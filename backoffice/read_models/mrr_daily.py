"""`mrr_daily`: Σ MRR deltas per day, currency and movement, from the ledger's effective rows.

The only read model Python writes: the replay adds each appended or corrected row's change in the same
transaction as the row (billing/replay/writer.py, `Rollup`), so no trigger keeps it. `flask billing
rebuild-rollups` and `flask db rebuild-read-models --only mrr_daily` repair it.
"""
from __future__ import annotations

from sqlalchemy import Date, Select, cast, func, select
from sqlalchemy.orm import Session

from backoffice.billing.models import MrrDaily, effective_billing_events
from backoffice.read_models import repair
from backoffice.read_models.model import ReadModel


def recompute(platform_currency: str) -> Select:
    """The effective deltas summed per UTC day, currency (the platform's when a row has none) and movement."""
    view = effective_billing_events
    day = cast(func.timezone("UTC", view.c.occurred_at), Date)
    currency = func.coalesce(view.c.currency, platform_currency)
    return (select(day.label("day"), currency.label("currency"), view.c.movement,
                   func.sum(view.c.amount_delta).label("delta_sum"), func.count().label("event_count"))
            .where(view.c.movement.is_not(None), view.c.amount_delta.is_not(None))
            .group_by(day, currency, view.c.movement))


MODEL = ReadModel(
    table=MrrDaily.__table__,
    key=("day", "currency", "movement"),
    sources=("billing_events", "billing_event_corrections"),
    writer="the replay (billing/replay/writer.py, Rollup), in the transaction that writes the ledger rows",
    readers=("read/dashboard.py (Blended MRR, the MRR trend, the movements)",
             "billing/reconcile/health.py (the MRR consistency banner)", "demo/prove_checks.py"),
    recompute=recompute,
    empty={"delta_sum": 0, "event_count": 0},
)


def compare(session: Session, platform_currency: str) -> list[repair.Difference]:
    """The days, currencies and movements where the rollup and the ledger disagree."""
    return repair.differences(session, MODEL, platform_currency)


def rebuild(session: Session, platform_currency: str) -> list[repair.Difference]:
    """Make the rollup the one the ledger gives; return what differed (the caller commits)."""
    return repair.rebuild(session, MODEL, platform_currency)
