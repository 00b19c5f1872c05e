"""A currency filter on the accounts and billing events lists: `account_index.currency` (the subscription's billing
currency) and `ledger_index.currency` (the row's), kept by their triggers (the functions as the read models
now write them) and filled from the tables already there.

Revision ID: 0020_list_currencies
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_list_currencies"
down_revision = "0019_fx_rates"
branch_labels = None
depends_on = None

LEDGER_INDEX = """
CREATE OR REPLACE FUNCTION ledger_index_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_index (billing_event_id, tenant_id, occurred_at, position, event_type, movement, currency)
    SELECT a.id, a.tenant_id, a.occurred_at, a.position, a.event_type, a.movement, a.currency FROM appended AS a;
    RETURN NULL;
END $$;
"""

ACCOUNT_INDEX = """
CREATE OR REPLACE FUNCTION account_index_from_subscription() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.tenant_id IS DISTINCT FROM NEW.tenant_id THEN
        UPDATE account_index SET subscription_id = NULL, status_rank = 4, mrr = 0, renewal_at = NULL, drift = false,
            priced = false, ledgered = false, currency = NULL
        WHERE tenant_id = OLD.tenant_id;
    END IF;
    UPDATE account_index SET subscription_id = NEW.id,
        status_rank = coalesce(array_position(ARRAY['active', 'downgrading', 'canceling', 'canceled', 'free'], NEW.account_status) - 1, 4),
        mrr = NEW.forward_mrr, renewal_at = NEW.current_period_end, drift = NEW.has_drift_detected,
        priced = NEW.current_price_amount IS NOT NULL, currency = NEW.current_price_currency,
        ledgered = EXISTS (SELECT 1 FROM billing_events e WHERE e.subscription_id = NEW.id)
    WHERE tenant_id = NEW.tenant_id;
    RETURN NULL;
END $$;
"""

SUBSCRIPTIONS_TRIGGER = """
CREATE OR REPLACE TRIGGER subscriptions_account_index
    AFTER INSERT OR UPDATE OF tenant_id, account_status, forward_mrr, current_period_end, has_drift_detected,
        current_price_amount, current_price_currency
    ON subscriptions FOR EACH ROW EXECUTE FUNCTION account_index_from_subscription();
"""


def upgrade():
    op.add_column("ledger_index", sa.Column("currency", sa.Text(), nullable=True))
    op.add_column("account_index", sa.Column("currency", sa.Text(), nullable=True))
    op.execute("UPDATE ledger_index AS li SET currency = e.currency FROM billing_events AS e "
               "WHERE e.id = li.billing_event_id")
    op.execute("UPDATE account_index AS ai SET currency = s.current_price_currency FROM subscriptions AS s "
               "WHERE s.id = ai.subscription_id")
    op.execute(LEDGER_INDEX)
    op.execute(ACCOUNT_INDEX)
    op.execute(SUBSCRIPTIONS_TRIGGER)


LEDGER_INDEX_BEFORE = """
CREATE OR REPLACE FUNCTION ledger_index_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_index (billing_event_id, tenant_id, occurred_at, position, event_type, movement)
    SELECT a.id, a.tenant_id, a.occurred_at, a.position, a.event_type, a.movement FROM appended AS a;
    RETURN NULL;
END $$;
"""

ACCOUNT_INDEX_BEFORE = """
CREATE OR REPLACE FUNCTION account_index_from_subscription() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.tenant_id IS DISTINCT FROM NEW.tenant_id THEN
        UPDATE account_index SET subscription_id = NULL, status_rank = 4, mrr = 0, renewal_at = NULL, drift = false,
            priced = false, ledgered = false
        WHERE tenant_id = OLD.tenant_id;
    END IF;
    UPDATE account_index SET subscription_id = NEW.id,
        status_rank = coalesce(array_position(ARRAY['active', 'downgrading', 'canceling', 'canceled', 'free'], NEW.account_status) - 1, 4),
        mrr = NEW.forward_mrr, renewal_at = NEW.current_period_end, drift = NEW.has_drift_detected,
        priced = NEW.current_price_amount IS NOT NULL,
        ledgered = EXISTS (SELECT 1 FROM billing_events e WHERE e.subscription_id = NEW.id)
    WHERE tenant_id = NEW.tenant_id;
    RETURN NULL;
END $$;
"""

SUBSCRIPTIONS_TRIGGER_BEFORE = """
CREATE OR REPLACE TRIGGER subscriptions_account_index
    AFTER INSERT OR UPDATE OF tenant_id, account_status, forward_mrr, current_period_end, has_drift_detected,
        current_price_amount
    ON subscriptions FOR EACH ROW EXECUTE FUNCTION account_index_from_subscription();
"""


def downgrade():
    op.execute(SUBSCRIPTIONS_TRIGGER_BEFORE)
    op.execute(ACCOUNT_INDEX_BEFORE)
    op.execute(LEDGER_INDEX_BEFORE)
    op.drop_column("account_index", "currency")
    op.drop_column("ledger_index", "currency")
