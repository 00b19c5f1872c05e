"""`revenue_daily`: net revenue per UTC day and currency, for the revenue tile and chart (migrations 0007, 0015).

A row trigger on payment_transactions takes the old row's movements out and puts the new row's in, each
movement from `net_revenue` (net_revenue.py), the function the Python revenue queries call too.
"""
from __future__ import annotations

from sqlalchemy import Select, func, select

from backoffice.billing.ledger import revenue
from backoffice.billing.models import RevenueDaily
from backoffice.read_models import net_revenue
from backoffice.read_models.model import ReadModel

APPLY = """
CREATE OR REPLACE FUNCTION revenue_daily_apply(p payment_transactions, sign integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO revenue_daily (day, currency, amount)
    SELECT (m.at AT TIME ZONE 'UTC')::date, p.currency, sum(m.amount) * sign FROM net_revenue(p) AS m
    WHERE m.counted GROUP BY 1
    ON CONFLICT (day, currency) DO UPDATE SET amount = revenue_daily.amount + EXCLUDED.amount;
END $$;
"""

FROM_PAYMENT = """
CREATE OR REPLACE FUNCTION revenue_daily_from_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.status, OLD.currency, OLD.date, OLD.amount_excluding_tax, OLD.refunded_amount,
            OLD.refunded_at, OLD.credited_amount, OLD.credit_noted_at)
        IS NOT DISTINCT FROM (NEW.status, NEW.currency, NEW.date, NEW.amount_excluding_tax, NEW.refunded_amount,
            NEW.refunded_at, NEW.credited_amount, NEW.credit_noted_at) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM revenue_daily_apply(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM revenue_daily_apply(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGER = """
CREATE OR REPLACE TRIGGER payment_transactions_revenue_daily AFTER INSERT OR UPDATE OR DELETE ON payment_transactions
    FOR EACH ROW EXECUTE FUNCTION revenue_daily_from_payment();
"""


def recompute(platform_currency: str) -> Select:
    """The counted movements of every payment summed per day and currency."""
    moves = revenue.counted_movements().subquery()
    return (select(moves.c.day, moves.c.currency, func.sum(moves.c.amount).label("amount"))
            .group_by(moves.c.day, moves.c.currency))


MODEL = ReadModel(
    table=RevenueDaily.__table__,
    key=("day", "currency"),
    sources=("payment_transactions",),
    writer="trigger payment_transactions_revenue_daily",
    readers=("read/dashboard.py (the Total revenue tile, the revenue chart)",),
    recompute=recompute,
    sql=(net_revenue.SQL, APPLY, FROM_PAYMENT, TRIGGER),
    functions=(net_revenue.SIGNATURE, "revenue_daily_apply(payment_transactions,integer)",
               "revenue_daily_from_payment()"),
    triggers=(("payment_transactions", "payment_transactions_revenue_daily"),),
    empty={"amount": 0},
)
