"""The SaaS metrics' totals per month: `account_month_totals`, account_months summed per month and billing
currency (every figure of a month; the MRR, paying accounts and their MRR at a month's end are the sums up to
it) as appended changes, kept by statement triggers on account_months and folded by
`account_month_totals_compact()` (backoffice/read_models/account_month_totals.py), filled from the
account_months already there. The metrics page reads these instead of every account live at a month's end.
`account_months_refresh` now writes only the rows that changed, so that the totals take one change per event.

Revision ID: 0022_account_month_totals
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_account_month_totals"
down_revision = "0021_account_months_active"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 2)

SQL = """
CREATE OR REPLACE FUNCTION account_month_totals_from_months() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO account_month_totals (month, currency, mrr, paying_mrr, paying, new, expansion, contraction, churn, reactivation, other, churned, new_logos, retained_change, retained_loss)
        SELECT * FROM (
            SELECT r.month, r.currency,
                   sum(r.sign * (r.mrr_end - r.mrr_start)) AS mrr,
                   sum(r.sign * (greatest(r.mrr_end, 0) - greatest(r.mrr_start, 0))) AS paying_mrr,
                   sum(r.sign * ((r.mrr_end > 0)::integer - (r.mrr_start > 0)::integer)) AS paying,
                   sum(r.sign * (r.new)) AS new,
                   sum(r.sign * (r.expansion)) AS expansion,
                   sum(r.sign * (r.contraction)) AS contraction,
                   sum(r.sign * (r.churn)) AS churn,
                   sum(r.sign * (r.reactivation)) AS reactivation,
                   sum(r.sign * (r.other)) AS other,
                   sum(r.sign * ((r.mrr_start > 0 AND r.mrr_end <= 0)::integer)) AS churned,
                   sum(r.sign * ((r.mrr_start <= 0 AND r.mrr_end > 0)::integer)) AS new_logos,
                   sum(r.sign * (CASE WHEN r.mrr_start > 0 THEN r.mrr_end - r.mrr_start ELSE 0 END)) AS retained_change,
                   sum(r.sign * (CASE WHEN r.mrr_start > 0 THEN least(r.mrr_end - r.mrr_start, 0) ELSE 0 END)) AS retained_loss
            FROM (SELECT o.*, -1 AS sign FROM old_months AS o) AS r GROUP BY r.month, r.currency) AS t
        WHERE (t.mrr, t.paying_mrr, t.paying, t.new, t.expansion, t.contraction, t.churn, t.reactivation, t.other, t.churned, t.new_logos, t.retained_change, t.retained_loss) IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO account_month_totals (month, currency, mrr, paying_mrr, paying, new, expansion, contraction, churn, reactivation, other, churned, new_logos, retained_change, retained_loss)
        SELECT * FROM (
            SELECT r.month, r.currency,
                   sum(r.sign * (r.mrr_end - r.mrr_start)) AS mrr,
                   sum(r.sign * (greatest(r.mrr_end, 0) - greatest(r.mrr_start, 0))) AS paying_mrr,
                   sum(r.sign * ((r.mrr_end > 0)::integer - (r.mrr_start > 0)::integer)) AS paying,
                   sum(r.sign * (r.new)) AS new,
                   sum(r.sign * (r.expansion)) AS expansion,
                   sum(r.sign * (r.contraction)) AS contraction,
                   sum(r.sign * (r.churn)) AS churn,
                   sum(r.sign * (r.reactivation)) AS reactivation,
                   sum(r.sign * (r.other)) AS other,
                   sum(r.sign * ((r.mrr_start > 0 AND r.mrr_end <= 0)::integer)) AS churned,
                   sum(r.sign * ((r.mrr_start <= 0 AND r.mrr_end > 0)::integer)) AS new_logos,
                   sum(r.sign * (CASE WHEN r.mrr_start > 0 THEN r.mrr_end - r.mrr_start ELSE 0 END)) AS retained_change,
                   sum(r.sign * (CASE WHEN r.mrr_start > 0 THEN least(r.mrr_end - r.mrr_start, 0) ELSE 0 END)) AS retained_loss
            FROM (SELECT n.*, 1 AS sign FROM new_months AS n) AS r GROUP BY r.month, r.currency) AS t
        WHERE (t.mrr, t.paying_mrr, t.paying, t.new, t.expansion, t.contraction, t.churn, t.reactivation, t.other, t.churned, t.new_logos, t.retained_change, t.retained_loss) IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    ELSE
        INSERT INTO account_month_totals (month, currency, mrr, paying_mrr, paying, new, expansion, contraction, churn, reactivation, other, churned, new_logos, retained_change, retained_loss)
        SELECT * FROM (
            SELECT r.month, r.currency,
                   sum(r.sign * (r.mrr_end - r.mrr_start)) AS mrr,
                   sum(r.sign * (greatest(r.mrr_end, 0) - greatest(r.mrr_start, 0))) AS paying_mrr,
                   sum(r.sign * ((r.mrr_end > 0)::integer - (r.mrr_start > 0)::integer)) AS paying,
                   sum(r.sign * (r.new)) AS new,
                   sum(r.sign * (r.expansion)) AS expansion,
                   sum(r.sign * (r.contraction)) AS contraction,
                   sum(r.sign * (r.churn)) AS churn,
                   sum(r.sign * (r.reactivation)) AS reactivation,
                   sum(r.sign * (r.other)) AS other,
                   sum(r.sign * ((r.mrr_start > 0 AND r.mrr_end <= 0)::integer)) AS churned,
                   sum(r.sign * ((r.mrr_start <= 0 AND r.mrr_end > 0)::integer)) AS new_logos,
                   sum(r.sign * (CASE WHEN r.mrr_start > 0 THEN r.mrr_end - r.mrr_start ELSE 0 END)) AS retained_change,
                   sum(r.sign * (CASE WHEN r.mrr_start > 0 THEN least(r.mrr_end - r.mrr_start, 0) ELSE 0 END)) AS retained_loss
            FROM (SELECT o.*, -1 AS sign FROM old_months AS o UNION ALL SELECT n.*, 1 AS sign FROM new_months AS n) AS r GROUP BY r.month, r.currency) AS t
        WHERE (t.mrr, t.paying_mrr, t.paying, t.new, t.expansion, t.contraction, t.churn, t.reactivation, t.other, t.churned, t.new_logos, t.retained_change, t.retained_loss) IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER account_months_totals_insert AFTER INSERT ON account_months
    REFERENCING NEW TABLE AS new_months FOR EACH STATEMENT EXECUTE FUNCTION account_month_totals_from_months();
CREATE OR REPLACE TRIGGER account_months_totals_update AFTER UPDATE ON account_months
    REFERENCING OLD TABLE AS old_months NEW TABLE AS new_months FOR EACH STATEMENT
    EXECUTE FUNCTION account_month_totals_from_months();
CREATE OR REPLACE TRIGGER account_months_totals_delete AFTER DELETE ON account_months
    REFERENCING OLD TABLE AS old_months FOR EACH STATEMENT EXECUTE FUNCTION account_month_totals_from_months();

CREATE OR REPLACE FUNCTION account_month_totals_compact() RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM account_month_totals RETURNING *),
    folded AS (
        INSERT INTO account_month_totals (month, currency, mrr, paying_mrr, paying, new, expansion, contraction, churn, reactivation, other, churned, new_logos, retained_change, retained_loss)
        SELECT g.month, g.currency, sum(g.mrr), sum(g.paying_mrr), sum(g.paying), sum(g.new), sum(g.expansion), sum(g.contraction), sum(g.churn), sum(g.reactivation), sum(g.other), sum(g.churned), sum(g.new_logos), sum(g.retained_change), sum(g.retained_loss) FROM gone AS g
        GROUP BY g.month, g.currency HAVING (sum(g.mrr), sum(g.paying_mrr), sum(g.paying), sum(g.new), sum(g.expansion), sum(g.contraction), sum(g.churn), sum(g.reactivation), sum(g.other), sum(g.churned), sum(g.new_logos), sum(g.retained_change), sum(g.retained_loss)) IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        RETURNING 1)
    SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM folded);
$$;

CREATE OR REPLACE FUNCTION account_months_refresh(subscriptions text[]) RETURNS void LANGUAGE sql AS $$
    WITH fresh AS MATERIALIZED (SELECT * FROM account_months_of(subscriptions)),
    gone AS (
        DELETE FROM account_months AS a WHERE a.subscription_id = ANY (subscriptions)
          AND NOT EXISTS (SELECT 1 FROM fresh AS f WHERE f.subscription_id = a.subscription_id AND f.month = a.month))
    INSERT INTO account_months (subscription_id, month, tenant_id, currency, mrr_start, mrr_end, new, expansion,
                                contraction, churn, reactivation, other, next_month, cohort)
    SELECT * FROM fresh
    ON CONFLICT (subscription_id, month) DO UPDATE SET
        tenant_id = EXCLUDED.tenant_id, currency = EXCLUDED.currency, mrr_start = EXCLUDED.mrr_start,
        mrr_end = EXCLUDED.mrr_end, new = EXCLUDED.new, expansion = EXCLUDED.expansion,
        contraction = EXCLUDED.contraction, churn = EXCLUDED.churn, reactivation = EXCLUDED.reactivation,
        other = EXCLUDED.other, next_month = EXCLUDED.next_month, cohort = EXCLUDED.cohort
    WHERE (account_months.tenant_id, account_months.currency, account_months.mrr_start, account_months.mrr_end,
           account_months.new, account_months.expansion, account_months.contraction, account_months.churn,
           account_months.reactivation, account_months.other, account_months.next_month, account_months.cohort)
          IS DISTINCT FROM (EXCLUDED.tenant_id, EXCLUDED.currency, EXCLUDED.mrr_start, EXCLUDED.mrr_end,
                            EXCLUDED.new, EXCLUDED.expansion, EXCLUDED.contraction, EXCLUDED.churn,
                            EXCLUDED.reactivation, EXCLUDED.other, EXCLUDED.next_month, EXCLUDED.cohort);
$$;
"""

# The function as migration 0018 left it, for the downgrade.
OLD_REFRESH = """
CREATE OR REPLACE FUNCTION account_months_refresh(subscriptions text[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM account_months WHERE subscription_id = ANY (subscriptions);
    INSERT INTO account_months (subscription_id, month, tenant_id, currency, mrr_start, mrr_end, new, expansion,
                                contraction, churn, reactivation, other, next_month, cohort)
    SELECT * FROM account_months_of(subscriptions);
$$;
"""

SUMS = ("mrr", "paying_mrr", "paying", "new", "expansion", "contraction", "churn", "reactivation", "other",
        "churned", "new_logos", "retained_change", "retained_loss")
COUNTS = ("paying", "churned", "new_logos")


def upgrade():
    op.create_table(
        "account_month_totals",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        *(sa.Column(name, sa.Integer() if name in COUNTS else MONEY, nullable=False) for name in SUMS),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_account_month_totals_currency")),
    )
    op.create_index("ix_account_month_totals_month", "account_month_totals", ["month"])
    op.execute(SQL)
    # What the triggers would have appended had they been there: every row of account_months, in.
    op.execute("""
        INSERT INTO account_month_totals (month, currency, mrr, paying_mrr, paying, new, expansion, contraction,
                                          churn, reactivation, other, churned, new_logos, retained_change,
                                          retained_loss)
        SELECT r.month, r.currency, sum(r.mrr_end - r.mrr_start),
               sum(greatest(r.mrr_end, 0) - greatest(r.mrr_start, 0)),
               sum((r.mrr_end > 0)::integer - (r.mrr_start > 0)::integer),
               sum(r.new), sum(r.expansion), sum(r.contraction), sum(r.churn), sum(r.reactivation), sum(r.other),
               sum((r.mrr_start > 0 AND r.mrr_end <= 0)::integer), sum((r.mrr_start <= 0 AND r.mrr_end > 0)::integer),
               sum(CASE WHEN r.mrr_start > 0 THEN r.mrr_end - r.mrr_start ELSE 0 END),
               sum(CASE WHEN r.mrr_start > 0 THEN least(r.mrr_end - r.mrr_start, 0) ELSE 0 END)
        FROM account_months AS r GROUP BY r.month, r.currency
    """)


def downgrade():
    op.execute(OLD_REFRESH)
    for name in ("account_months_totals_delete", "account_months_totals_update", "account_months_totals_insert"):
        op.execute(f"DROP TRIGGER {name} ON account_months")
    op.execute("DROP FUNCTION account_month_totals_compact()")
    op.execute("DROP FUNCTION account_month_totals_from_months()")
    op.drop_table("account_month_totals")
