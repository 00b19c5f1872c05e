"""Net revenue, ex-VAT (DESIGN §4.10): one set of dated movements serves the tile, the chart and lifetime value.

A payment adds its amount excluding tax on its day; a refund subtracts on the refund day, a credit note on
its day (a voided one is no longer counted, so it adds back). So the revenue tile = the chart's last
point = Σ lifetime values, by construction. Soft-deleted tenants stay in: money history never moves.

The rule itself is the SQL function `net_revenue(payment)` (backoffice/read_models/net_revenue.py, migration
0015), which revenue_daily's trigger and the invoices' read model call too; these queries sum what it yields.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Date,
    Select,
    Subquery,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import DateTime, Text

from backoffice.billing.models import MONEY, PaymentTransaction

PAYMENTS = PaymentTransaction.__table__
ZERO = Decimal("0.00")
# Each payment's parts (its amount, its refund, its credit), dated, each saying whether it counts.
PARTS = func.net_revenue(PAYMENTS.table_valued()).table_valued(
    column("part", Text), column("at", DateTime(timezone=True)), column("amount", MONEY), column("counted", Boolean),
).render_derived().lateral("net")


def utc_day(column):
    """The UTC calendar day of a timestamp column (the zone inlined, so GROUP BY sees the same expression)."""
    return cast(func.timezone(literal_column("'UTC'"), column), Date)


def counted_movements() -> Select:
    """(tenant_id, currency, day, amount) of every movement that counts as net revenue, in every currency."""
    return (select(PAYMENTS.c.tenant_id.label("tenant_id"), PAYMENTS.c.currency.label("currency"),
                   utc_day(PARTS.c.at).label("day"), PARTS.c.amount.label("amount"))
            .select_from(PAYMENTS.join(PARTS, true())).where(PARTS.c.counted))


def movements(currency: str, tenant_id: str | None = None) -> Subquery:
    """(tenant_id, day, amount) rows whose sum is net revenue: payments, refunds and credits on their own days."""
    query = counted_movements().where(PAYMENTS.c.currency == currency)
    return (query.where(PAYMENTS.c.tenant_id == tenant_id) if tenant_id is not None else query).subquery()


def total_revenue(session: Session, currency: str, *, until: date | None = None) -> Decimal:
    """All-time net revenue (the Total revenue tile), optionally up to and including a day."""
    moves = movements(currency)
    query = select(func.coalesce(func.sum(moves.c.amount), literal(ZERO)))
    if until is not None:
        query = query.where(moves.c.day <= until)
    return session.scalar(query)


def lifetime_values(session: Session, currency: str) -> dict[str, Decimal]:
    """Net revenue per tenant."""
    moves = movements(currency)
    return dict(session.execute(select(moves.c.tenant_id, func.sum(moves.c.amount)).group_by(moves.c.tenant_id)).all())


def lifetime_value(session: Session, currency: str, tenant_id: str) -> Decimal:
    moves = movements(currency, tenant_id)
    return session.scalar(select(func.coalesce(func.sum(moves.c.amount), literal(ZERO))))


def cumulative_series(session: Session, currency: str, first: date, last: date) -> list[tuple[date, Decimal]]:
    """Cumulative net revenue at the end of each day from `first` to `last` (the revenue chart)."""
    moves = movements(currency)
    start = total_revenue(session, currency, until=first - timedelta(days=1))
    daily = dict(session.execute(select(moves.c.day, func.sum(moves.c.amount))
                                 .where(moves.c.day.between(first, last)).group_by(moves.c.day)).all())
    series, running = [], start
    day = first
    while day <= last:
        running += daily.get(day, ZERO)
        series.append((day, running))
        day += timedelta(days=1)
    return series
