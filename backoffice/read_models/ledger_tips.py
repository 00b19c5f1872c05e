"""`ledger_tips`: each subscription's latest effective ledger row per currency, the committed MRR the MRR
consistency banner sums (migration 0010).

Statement triggers on billing_events and billing_event_corrections recompute the tips of the subscriptions a
statement appends to or corrects, from `effective_billing_events`: the database derives them from the ledger alone.
"""
from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import distinct_on

from backoffice.billing.models import LedgerTip, effective_billing_events
from backoffice.read_models.model import ReadModel

REFRESH = """
CREATE OR REPLACE FUNCTION ledger_tips_refresh(subscriptions text[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO ledger_tips (subscription_id, currency, committed_mrr, occurred_at, position)
    SELECT DISTINCT ON (v.subscription_id, v.currency) v.subscription_id, v.currency, v.committed_mrr,
           v.occurred_at, v.position
    FROM effective_billing_events AS v
    WHERE v.subscription_id = ANY (subscriptions) AND v.currency IS NOT NULL
    ORDER BY v.subscription_id, v.currency, v.occurred_at DESC, v.position DESC
    ON CONFLICT (subscription_id, currency) DO UPDATE SET committed_mrr = EXCLUDED.committed_mrr,
        occurred_at = EXCLUDED.occurred_at, position = EXCLUDED.position;
$$;
"""

FROM_LEDGER = """
CREATE OR REPLACE FUNCTION ledger_tips_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_tips_refresh(ARRAY(SELECT DISTINCT a.subscription_id FROM appended AS a
                                      WHERE a.subscription_id IS NOT NULL));
    RETURN NULL;
END $$;
"""

FROM_CORRECTION = """
CREATE OR REPLACE FUNCTION ledger_tips_from_correction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_tips_refresh(ARRAY(SELECT DISTINCT e.subscription_id FROM corrected AS c
                                      JOIN billing_events AS e ON e.id = c.billing_event_id
                                      WHERE e.subscription_id IS NOT NULL));
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER billing_events_ledger_tips AFTER INSERT ON billing_events
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION ledger_tips_from_ledger();
CREATE OR REPLACE TRIGGER billing_event_corrections_ledger_tips AFTER INSERT ON billing_event_corrections
    REFERENCING NEW TABLE AS corrected FOR EACH STATEMENT EXECUTE FUNCTION ledger_tips_from_correction();
"""


def recompute(platform_currency: str) -> Select:
    """The latest effective row of each subscription and currency (rows without a currency have no tip)."""
    view = effective_billing_events
    return (select(view.c.subscription_id, view.c.currency, view.c.committed_mrr, view.c.occurred_at,
                   view.c.position)
            .ext(distinct_on(view.c.subscription_id, view.c.currency))
            .where(view.c.subscription_id.is_not(None), view.c.currency.is_not(None))
            .order_by(view.c.subscription_id, view.c.currency, view.c.occurred_at.desc(), view.c.position.desc()))


MODEL = ReadModel(
    table=LedgerTip.__table__,
    key=("subscription_id", "currency"),
    sources=("billing_events", "billing_event_corrections"),
    writer="triggers billing_events_ledger_tips, billing_event_corrections_ledger_tips",
    readers=("billing/reconcile/health.py (the MRR consistency banner)",
             "read/account_list.py (the mismatch filter)"),
    recompute=recompute,
    sql=(REFRESH, FROM_LEDGER, FROM_CORRECTION, TRIGGERS),
    functions=("ledger_tips_refresh(text[])", "ledger_tips_from_ledger()", "ledger_tips_from_correction()"),
    triggers=(("billing_events", "billing_events_ledger_tips"),
              ("billing_event_corrections", "billing_event_corrections_ledger_tips")),
)
