"""The SaaS metrics' rollup: `account_months`, each subscription's metric MRR in each month it moved, kept by
statement triggers from the effective ledger (backoffice/read_models/account_months.py says how churn at period
end is dated), and filled from the ledger already there.

Revision ID: 0018_account_months
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_account_months"
down_revision = "0017_id_lookup"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 2)

SQL = """
CREATE OR REPLACE FUNCTION account_months_of(subscriptions text[]) RETURNS TABLE (
    subscription_id text, month date, tenant_id text, currency text, mrr_start numeric, mrr_end numeric,
    new numeric, expansion numeric, contraction numeric, churn numeric, reactivation numeric, other numeric,
    next_month date, cohort date)
LANGUAGE sql STABLE AS $$
    WITH moving AS (
        SELECT v.subscription_id, v.tenant_id, v.currency, v.event_type, v.movement, v.amount_delta,
               v.occurred_at, v.position
        FROM effective_billing_events AS v
        WHERE (subscriptions IS NULL OR v.subscription_id = ANY (subscriptions))
          AND v.subscription_id IS NOT NULL AND v.currency IS NOT NULL AND v.amount_delta IS NOT NULL
          AND (v.amount_delta <> 0 OR v.event_type IN ('SubscriptionExpired', 'SubscriptionImmediatelyCancelled',
                                                       'SubscriptionSuspended'))
    ), linked AS (
        SELECT m.*,
               lead(m.event_type) OVER w AS next_type, lead(m.occurred_at) OVER w AS next_at,
               lead(m.amount_delta) OVER w AS next_delta, lag(m.event_type) OVER w AS previous_type
        FROM moving AS m
        WINDOW w AS (PARTITION BY m.subscription_id ORDER BY m.occurred_at, m.position)
    ), counted AS (
        SELECT l.subscription_id, l.tenant_id, l.currency,
               CASE WHEN l.event_type = 'SubscriptionCancelled' THEN l.next_at ELSE l.occurred_at END AS at,
               CASE WHEN l.event_type = 'SubscriptionCancelled' AND NOT l.next_ends
                    THEN l.amount_delta + l.next_delta ELSE l.amount_delta END AS delta,
               CASE WHEN l.event_type = 'SubscriptionCancelled' AND NOT l.next_ends
                    THEN CASE WHEN l.amount_delta + l.next_delta > 0 THEN 'expansion' ELSE 'contraction' END
                    ELSE l.movement END AS movement
        FROM (SELECT linked.*, coalesce(linked.next_type IN ('SubscriptionExpired',
                                                             'SubscriptionImmediatelyCancelled',
                                                             'SubscriptionSuspended'), false) AS next_ends,
                     linked.event_type IN ('SubscriptionExpired', 'SubscriptionImmediatelyCancelled',
                                           'SubscriptionSuspended') AS ends
              FROM linked) AS l
        WHERE NOT (l.event_type = 'SubscriptionCancelled' AND l.next_type IS NULL)
          AND (l.previous_type IS DISTINCT FROM 'SubscriptionCancelled' OR l.ends)
    ), monthly AS (
        SELECT c.subscription_id, CAST(date_trunc('month', c.at AT TIME ZONE 'UTC') AS date) AS month,
               min(c.tenant_id) AS tenant_id, min(c.currency) AS currency, sum(c.delta) AS change,
               coalesce(sum(c.delta) FILTER (WHERE c.movement = 'new'), 0) AS new,
               coalesce(sum(c.delta) FILTER (WHERE c.movement = 'expansion'), 0) AS expansion,
               coalesce(sum(c.delta) FILTER (WHERE c.movement = 'contraction'), 0) AS contraction,
               coalesce(sum(c.delta) FILTER (WHERE c.movement = 'churn'), 0) AS churn,
               coalesce(sum(c.delta) FILTER (WHERE c.movement = 'reactivation'), 0) AS reactivation,
               coalesce(sum(c.delta) FILTER (WHERE c.movement IS NULL OR c.movement NOT IN
                   ('new', 'expansion', 'contraction', 'churn', 'reactivation')), 0) AS other
        FROM counted AS c
        GROUP BY c.subscription_id, 2
    ), running AS (
        SELECT m.*, sum(m.change) OVER w AS mrr_end, lead(m.month) OVER w AS next_month
        FROM monthly AS m
        WINDOW w AS (PARTITION BY m.subscription_id ORDER BY m.month)
    )
    SELECT r.subscription_id, r.month, r.tenant_id, r.currency, r.mrr_end - r.change, r.mrr_end,
           r.new, r.expansion, r.contraction, r.churn, r.reactivation, r.other, r.next_month,
           min(r.month) FILTER (WHERE r.mrr_end > 0) OVER (PARTITION BY r.subscription_id)
    FROM running AS r;
$$;
CREATE OR REPLACE FUNCTION account_months_refresh(subscriptions text[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM account_months WHERE subscription_id = ANY (subscriptions);
    INSERT INTO account_months (subscription_id, month, tenant_id, currency, mrr_start, mrr_end, new, expansion,
                                contraction, churn, reactivation, other, next_month, cohort)
    SELECT * FROM account_months_of(subscriptions);
$$;
CREATE OR REPLACE FUNCTION account_months_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM account_months_refresh(ARRAY(SELECT DISTINCT a.subscription_id FROM appended AS a
                                         WHERE a.subscription_id IS NOT NULL AND a.amount_delta IS NOT NULL));
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION account_months_from_correction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM account_months_refresh(ARRAY(SELECT DISTINCT e.subscription_id FROM corrected AS c
                                         JOIN billing_events AS e ON e.id = c.billing_event_id
                                         WHERE e.subscription_id IS NOT NULL));
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER billing_events_account_months AFTER INSERT ON billing_events
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION account_months_from_ledger();
CREATE OR REPLACE TRIGGER billing_event_corrections_account_months AFTER INSERT ON billing_event_corrections
    REFERENCING NEW TABLE AS corrected FOR EACH STATEMENT EXECUTE FUNCTION account_months_from_correction();
"""


def upgrade():
    op.create_table(
        "account_months",
        sa.Column("subscription_id", sa.Text(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        *(sa.Column(name, MONEY, nullable=False) for name in (
            "mrr_start", "mrr_end", "new", "expansion", "contraction", "churn", "reactivation", "other")),
        sa.Column("next_month", sa.Date(), nullable=True),
        sa.Column("cohort", sa.Date(), nullable=True),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_account_months_currency")),
        sa.PrimaryKeyConstraint("subscription_id", "month", name=op.f("pk_account_months")),
    )
    op.create_index(op.f("ix_account_months_month"), "account_months", ["month"])
    op.create_index(op.f("ix_account_months_cohort_month"), "account_months", ["cohort", "month"])
    op.execute(SQL)
    op.execute("INSERT INTO account_months SELECT * FROM account_months_of(NULL)")


def downgrade():
    op.execute("DROP TRIGGER billing_event_corrections_account_months ON billing_event_corrections")
    op.execute("DROP TRIGGER billing_events_account_months ON billing_events")
    for function in ("account_months_from_correction()", "account_months_from_ledger()",
                     "account_months_refresh(text[])", "account_months_of(text[])"):
        op.execute(f"DROP FUNCTION {function}")
    op.drop_table("account_months")
