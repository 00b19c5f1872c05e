"""`revenue_daily`: net revenue per UTC day and currency, for the revenue tile and chart (migrations 0007, 0015).

Statement triggers on payment_transactions take the old rows' movements out and put the new rows' in, summed per
day and currency, each movement from `net_revenue` (net_revenue.py), the function the Python revenue queries call
too. A row trigger until migration 0028: one upsert per payment, ~9 µs of the server's time per replayed event.
"""
from __future__ import annotations

from sqlalchemy import Select, func, select

from backoffice.billing.ledger import revenue
from backoffice.billing.models import RevenueDaily
from backoffice.read_models import net_revenue
from backoffice.read_models.model import ReadModel

# One INSERT per statement that writes payments, its rows in (day, currency) order: two replays at once (the shards
# of `replay --all`) take the days' rows in one order, so they wait for each other but never deadlock. Of an update,
# only the payments whose revenue could have moved count: those whose net_revenue inputs changed. An insert is a
# move from no rows, a delete a move to none.
MOVEMENTS = """
CREATE OR REPLACE FUNCTION revenue_daily_move(old_rows payment_transactions[], new_rows payment_transactions[])
RETURNS void LANGUAGE sql AS $$
    WITH unchanged AS (
        SELECT o.id FROM unnest(old_rows) AS o JOIN unnest(new_rows) AS n ON n.id = o.id
        WHERE (o.status, o.currency, o.date, o.amount_excluding_tax, o.refunded_amount, o.refunded_at,
               o.credited_amount, o.credit_noted_at)
          IS NOT DISTINCT FROM (n.status, n.currency, n.date, n.amount_excluding_tax, n.refunded_amount,
               n.refunded_at, n.credited_amount, n.credit_noted_at))
    INSERT INTO revenue_daily (day, currency, amount)
    SELECT c.day, c.currency, sum(c.amount)
    FROM (SELECT (m.at AT TIME ZONE 'UTC')::date AS day, o.currency, -m.amount AS amount
          FROM unnest(old_rows) AS o CROSS JOIN LATERAL net_revenue(o) AS m
          WHERE m.counted AND o.id NOT IN (SELECT id FROM unchanged)
          UNION ALL
          SELECT (m.at AT TIME ZONE 'UTC')::date, n.currency, m.amount
          FROM unnest(new_rows) AS n CROSS JOIN LATERAL net_revenue(n) AS m
          WHERE m.counted AND n.id NOT IN (SELECT id FROM unchanged)) AS c
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (day, currency) DO UPDATE SET amount = revenue_daily.amount + EXCLUDED.amount;
$$;

CREATE OR REPLACE FUNCTION revenue_daily_from_payments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Apart: a transition table the operation lacks cannot even be named. ROW(...): a transition table's row is
    -- a record, which no cast turns into the table's type.
    IF TG_OP = 'INSERT' THEN
        PERFORM revenue_daily_move('{}', ARRAY(SELECT ROW(n.*)::payment_transactions FROM new_payments AS n));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM revenue_daily_move(ARRAY(SELECT ROW(o.*)::payment_transactions FROM old_payments AS o), '{}');
    ELSE
        PERFORM revenue_daily_move(ARRAY(SELECT ROW(o.*)::payment_transactions FROM old_payments AS o),
                                   ARRAY(SELECT ROW(n.*)::payment_transactions FROM new_payments AS n));
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER payment_transactions_revenue_daily_insert AFTER INSERT ON payment_transactions
    REFERENCING NEW TABLE AS new_payments FOR EACH STATEMENT EXECUTE FUNCTION revenue_daily_from_payments();
CREATE OR REPLACE TRIGGER payment_transactions_revenue_daily_update AFTER UPDATE ON payment_transactions
    REFERENCING OLD TABLE AS old_payments NEW TABLE AS new_payments FOR EACH STATEMENT
    EXECUTE FUNCTION revenue_daily_from_payments();
CREATE OR REPLACE TRIGGER payment_transactions_revenue_daily_delete AFTER DELETE ON payment_transactions
    REFERENCING OLD TABLE AS old_payments FOR EACH STATEMENT EXECUTE FUNCTION revenue_daily_from_payments();
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
    writer="triggers payment_transactions_revenue_daily_insert, _update, _delete",
    readers=("read/dashboard.py (the Total revenue tile, the revenue chart)",),
    recompute=recompute,
    sql=(net_revenue.SQL, MOVEMENTS, TRIGGERS),
    functions=(net_revenue.SIGNATURE, "revenue_daily_move(payment_transactions[],payment_transactions[])",
               "revenue_daily_from_payments()"),
    triggers=(("payment_transactions", "payment_transactions_revenue_daily_insert"),
              ("payment_transactions", "payment_transactions_revenue_daily_update"),
              ("payment_transactions", "payment_transactions_revenue_daily_delete")),
    empty={"amount": 0},
)
