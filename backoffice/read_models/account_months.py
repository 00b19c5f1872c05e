"""`account_months`: each subscription's MRR month by month as the SaaS metrics count it (migration 0018).

One row per subscription and month in which its metric MRR moved: the MRR at the month's start and end, the
month's movements, the month of the next row (none: nothing has moved since) and the subscription's cohort
(the first month it ended paying). The MRR of any month is then the `mrr_end` of the row whose month is at or
before it and whose `next_month` is after it; a month's movements are its rows' sums.

Metric MRR is the ledger's committed MRR with one difference, the written definition of churn the metrics
follow (ChartMogul's, docs/metrics.md): a cancellation at period end churns when the paid period ends, not
when it is asked for. So a SubscriptionCancelled row counts at the next row that moves its subscription: at an
Expired, ImmediatelyCancelled or Suspended row it is churn on that row's day; at any other (the customer
reactivated, or changed plan, before the period ended) the two count together as one change on that day
(nothing, when the customer simply kept the plan); with no next row yet, the period has not ended and
nothing has churned.

Statement triggers on billing_events and billing_event_corrections recompute the months of the subscriptions a
statement appends to or corrects, from `effective_billing_events`, as ledger_tips does.
"""
from __future__ import annotations

from sqlalchemy import Select, column, func, select

from backoffice.billing.models import AccountMonth, Subscription
from backoffice.read_models.model import ReadModel

# The subscriptions' months, from the effective ledger. The predicate is the array alone: the refresh calls this
# from a SQL function, whose plan is made without the argument's value, and there an `IS NULL OR` beside it kept
# the index out and read the whole ledger on every refresh (migration 0026).
MONTHS_OF = """
CREATE OR REPLACE FUNCTION account_months_of(subscriptions text[]) RETURNS TABLE (
    subscription_id text, month date, tenant_id text, currency text, mrr_start numeric, mrr_end numeric,
    new numeric, expansion numeric, contraction numeric, churn numeric, reactivation numeric, other numeric,
    next_month date, cohort date)
LANGUAGE sql STABLE AS $$
    WITH moving AS (
        SELECT v.subscription_id, v.tenant_id, v.currency, v.event_type, v.movement, v.amount_delta,
               v.occurred_at, v.position
        FROM effective_billing_events AS v
        WHERE v.subscription_id = ANY (subscriptions)
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
"""

# Only the rows that changed are written: a new event mostly moves its subscription's last month, and the totals
# per month (account_month_totals, kept by triggers on this table) then take one change, not the whole history
# out and back in. Months gone are deleted; the others are upserted where a value differs.
REFRESH = """
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

FROM_LEDGER = """
CREATE OR REPLACE FUNCTION account_months_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM account_months_refresh(ARRAY(SELECT DISTINCT a.subscription_id FROM appended AS a
                                         WHERE a.subscription_id IS NOT NULL AND a.amount_delta IS NOT NULL));
    RETURN NULL;
END $$;
"""

FROM_CORRECTION = """
CREATE OR REPLACE FUNCTION account_months_from_correction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM account_months_refresh(ARRAY(SELECT DISTINCT e.subscription_id FROM corrected AS c
                                         JOIN billing_events AS e ON e.id = c.billing_event_id
                                         WHERE e.subscription_id IS NOT NULL));
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER billing_events_account_months AFTER INSERT ON billing_events
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION account_months_from_ledger();
CREATE OR REPLACE TRIGGER billing_event_corrections_account_months AFTER INSERT ON billing_event_corrections
    REFERENCING NEW TABLE AS corrected FOR EACH STATEMENT EXECUTE FUNCTION account_months_from_correction();
"""

COLUMNS = ("subscription_id", "month", "tenant_id", "currency", "mrr_start", "mrr_end", "new", "expansion",
           "contraction", "churn", "reactivation", "other", "next_month", "cohort")


def recompute(platform_currency: str) -> Select:
    """Every subscription's months, from the same SQL function the triggers use."""
    every = func.array(select(Subscription.id).scalar_subquery())
    months = func.account_months_of(every).table_valued(*(column(name) for name in COLUMNS))
    return select(*(months.c[name] for name in COLUMNS))


MODEL = ReadModel(
    table=AccountMonth.__table__,
    key=("subscription_id", "month"),
    sources=("billing_events", "billing_event_corrections"),
    writer="triggers billing_events_account_months, billing_event_corrections_account_months",
    readers=("read/saas_metrics.py (the metrics page: ARR, ARPA, churn, retention, cohorts, LTV)",),
    recompute=recompute,
    sql=(MONTHS_OF, REFRESH, FROM_LEDGER, FROM_CORRECTION, TRIGGERS),
    functions=("account_months_of(text[])", "account_months_refresh(text[])", "account_months_from_ledger()",
               "account_months_from_correction()"),
    triggers=(("billing_events", "billing_events_account_months"),
              ("billing_event_corrections", "billing_event_corrections_account_months")),
)
