"""Net revenue written once: `net_revenue(payment)`, a payment's movements as one SQL function, which the revenue
queries, revenue_daily's trigger and the invoices' read model all call (they each wrote the rule out before).

The function yields a payment's three parts (its amount ex-VAT on its day, its refund and its credit taken back on
theirs) and says which count: `revenue_daily_apply` sums the counted ones; `invoice_rows_of` projects an invoice's
rows from them, and `invoice_rows_project` inserts those. What each table holds does not change. The text is
copied from backoffice/read_models/ (net_revenue.py, revenue_daily.py, invoice_rows.py), which keeps the current
SQL of every read model; the downgrade restores migrations 0007's and 0011's functions.

Revision ID: 0015_net_revenue_once
"""

from alembic import op

revision = "0015_net_revenue_once"
down_revision = "0014_restate_action"
branch_labels = None
depends_on = None

NET_REVENUE = """
CREATE OR REPLACE FUNCTION net_revenue(p payment_transactions)
RETURNS TABLE (part text, at timestamptz, amount numeric, counted boolean) LANGUAGE sql IMMUTABLE AS $$
    SELECT m.part, m.at, m.amount, p.status IN ('succeeded', 'refunded') AND (m.part = 'payment' OR m.amount <> 0)
    FROM (VALUES ('payment', p.date, p.amount_excluding_tax),
                 ('refund', coalesce(p.refunded_at, p.date), -p.refunded_amount),
                 ('credit', coalesce(p.credit_noted_at, p.refunded_at, p.date), -p.credited_amount))
         AS m (part, at, amount)
$$;
"""

REVENUE_DAILY_APPLY = """
CREATE OR REPLACE FUNCTION revenue_daily_apply(p payment_transactions, sign integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO revenue_daily (day, currency, amount)
    SELECT (m.at AT TIME ZONE 'UTC')::date, p.currency, sum(m.amount) * sign FROM net_revenue(p) AS m
    WHERE m.counted GROUP BY 1
    ON CONFLICT (day, currency) DO UPDATE SET amount = revenue_daily.amount + EXCLUDED.amount;
END $$;
"""

INVOICE_ROWS_OF = """
CREATE OR REPLACE FUNCTION invoice_rows_of(p payment_transactions)
RETURNS TABLE (kind text, date timestamptz, status text, amount numeric) LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE m.part WHEN 'payment' THEN 'invoice' WHEN 'credit' THEN 'credit_note' ELSE 'refund' END, m.at,
           CASE WHEN m.part = 'payment' THEN coalesce(nullif(p.status, 'refunded'), 'succeeded') ELSE 'refunded' END,
           CASE WHEN m.part = 'credit' THEN m.amount + m.refunded ELSE m.amount END
    FROM (SELECT n.part, n.at, n.amount, sum(n.amount) FILTER (WHERE n.part = 'refund') OVER () AS refunded
          FROM net_revenue(p) AS n) AS m
    WHERE m.part = 'payment'
       OR m.part = 'credit' AND p.credit_note_url IS NOT NULL
       OR m.part = 'refund' AND p.credit_note_url IS NULL AND (p.status = 'refunded' OR p.refunded_at IS NOT NULL)
$$;
"""

INVOICE_ROWS_PROJECT = """
CREATE OR REPLACE FUNCTION invoice_rows_project(transactions text[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM invoice_rows WHERE transaction_id = ANY (transactions);
    INSERT INTO invoice_rows (key, kind, transaction_id, tenant_id, date, status, amount, currency)
    SELECT p.id || ':' || r.kind, r.kind, p.id, p.tenant_id, r.date, r.status, r.amount, p.currency
    FROM payment_transactions AS p CROSS JOIN LATERAL invoice_rows_of(p) AS r
    WHERE p.id = ANY (transactions);
$$;
"""

# The functions as migrations 0007 and 0011 left them, for the downgrade.
REVENUE_DAILY_APPLY_0007 = """
CREATE OR REPLACE FUNCTION revenue_daily_apply(p payment_transactions, sign integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p.status NOT IN ('succeeded', 'refunded') THEN
        RETURN;
    END IF;
    INSERT INTO revenue_daily (day, currency, amount)
    SELECT m.day, m.currency, sum(m.amount) * sign FROM (
    SELECT p.currency, (p.date AT TIME ZONE 'UTC')::date AS day, p.amount_excluding_tax AS amount
    UNION ALL
    SELECT p.currency, (coalesce(p.refunded_at, p.date) AT TIME ZONE 'UTC')::date, -p.refunded_amount
    WHERE p.refunded_amount > 0
    UNION ALL
    SELECT p.currency, (coalesce(p.credit_noted_at, p.refunded_at, p.date) AT TIME ZONE 'UTC')::date,
           -p.credited_amount
    WHERE p.credited_amount > 0
) AS m GROUP BY m.day, m.currency
    ON CONFLICT (day, currency) DO UPDATE SET amount = revenue_daily.amount + EXCLUDED.amount;
END $$;
"""

INVOICE_ROWS_PROJECT_0011 = """
CREATE OR REPLACE FUNCTION invoice_rows_project(transactions text[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM invoice_rows WHERE transaction_id = ANY (transactions);
    INSERT INTO invoice_rows (key, kind, transaction_id, tenant_id, date, status, amount, currency)
    SELECT p.id || ':' || 'invoice', 'invoice', p.id, p.tenant_id, p.date,
           coalesce(nullif(p.status, 'refunded'), 'succeeded'), p.amount_excluding_tax, p.currency
    FROM payment_transactions AS p WHERE p.id = ANY (transactions)
    UNION ALL
    SELECT p.id || ':' || 'credit_note', 'credit_note', p.id, p.tenant_id,
           coalesce(p.credit_noted_at, p.refunded_at, p.date), 'refunded', -(p.credited_amount + p.refunded_amount),
           p.currency
    FROM payment_transactions AS p WHERE p.id = ANY (transactions) AND p.credit_note_url IS NOT NULL
    UNION ALL
    SELECT p.id || ':' || 'refund', 'refund', p.id, p.tenant_id, coalesce(p.refunded_at, p.date), 'refunded',
           -p.refunded_amount, p.currency
    FROM payment_transactions AS p WHERE p.id = ANY (transactions) AND p.credit_note_url IS NULL
         AND (p.status = 'refunded' OR p.refunded_at IS NOT NULL);
$$;
"""


def upgrade():
    # Each function's body is checked as it is created, so the ones called come first.
    for statement in (NET_REVENUE, REVENUE_DAILY_APPLY, INVOICE_ROWS_OF, INVOICE_ROWS_PROJECT):
        op.execute(statement)


def downgrade():
    op.execute(INVOICE_ROWS_PROJECT_0011)
    op.execute(REVENUE_DAILY_APPLY_0007)
    op.execute("DROP FUNCTION invoice_rows_of(payment_transactions)")
    op.execute("DROP FUNCTION net_revenue(payment_transactions)")
