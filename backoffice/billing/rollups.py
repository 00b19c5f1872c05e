"""`mrr_daily` against the ledger: the rollup recomputed from `effective_billing_events`, compared, rebuilt.

The replay job keeps the rollup in step row by row; this is the check (and the repair) that it did.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Date, cast, delete, func, insert, select
from sqlalchemy.orm import Session

from backoffice.billing.models import MrrDaily, effective_billing_events

ROLLUP = MrrDaily.__table__
Key = tuple[date, str, str]


@dataclass(frozen=True)
class RollupDifference:
    day: date
    currency: str
    movement: str
    stored: tuple[Decimal, int]
    rebuilt: tuple[Decimal, int]

    def __str__(self) -> str:
        return (f"{self.day} {self.currency} {self.movement}: stored {self.stored[0]} over {self.stored[1]} rows, "
                f"ledger says {self.rebuilt[0]} over {self.rebuilt[1]}")


def from_ledger(session: Session, platform_currency: str) -> dict[Key, tuple[Decimal, int]]:
    view = effective_billing_events
    day = cast(func.timezone("UTC", view.c.occurred_at), Date)
    currency = func.coalesce(view.c.currency, platform_currency)
    rows = session.execute(
        select(day, currency, view.c.movement, func.sum(view.c.amount_delta), func.count())
        .where(view.c.movement.is_not(None), view.c.amount_delta.is_not(None))
        .group_by(day, currency, view.c.movement)).all()
    return {(d, c, m): (total, count) for d, c, m, total, count in rows}


def stored(session: Session) -> dict[Key, tuple[Decimal, int]]:
    rows = session.execute(select(ROLLUP.c.day, ROLLUP.c.currency, ROLLUP.c.movement, ROLLUP.c.delta_sum,
                                  ROLLUP.c.event_count)).all()
    return {(d, c, m): (total, count) for d, c, m, total, count in rows if total or count}


def compare(session: Session, platform_currency: str) -> list[RollupDifference]:
    rebuilt, kept = from_ledger(session, platform_currency), stored(session)
    none = (Decimal("0.00"), 0)
    return [RollupDifference(*key, kept.get(key, none), rebuilt.get(key, none))
            for key in sorted(set(rebuilt) | set(kept)) if kept.get(key, none) != rebuilt.get(key, none)]


def rebuild(session: Session, platform_currency: str) -> list[RollupDifference]:
    """Replace the rollup by the one the ledger gives; return what differed (the caller commits)."""
    differences = compare(session, platform_currency)
    if differences:
        session.execute(delete(ROLLUP))
        rows = [{"day": d, "currency": c, "movement": m, "delta_sum": total, "event_count": count}
                for (d, c, m), (total, count) in from_ledger(session, platform_currency).items()]
        if rows:
            session.execute(insert(ROLLUP), rows)
    return differences
