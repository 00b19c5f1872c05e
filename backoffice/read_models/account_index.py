"""`account_index`: the accounts list's read model, one narrow row per tenant (migrations 0006, 0020).

A trigger on tenants writes the tenant's columns, one on subscriptions the subscription's (clearing the old
tenant's when a subscription moves), and a statement trigger on billing_events marks a subscription's first ledger
row, so that "priced but never ledgered" (the unsynced filter) is a column test.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Select, exists, false, func, literal, literal_column, select

from backoffice.accounts.models import AccountIndex, Tenant
from backoffice.billing.models import BillingEvent, Subscription
from backoffice.read_models.model import ReadModel

# The accounts list's status order (reference §6): Active, Downgrading, Canceling, Canceled, Free.
STATUS_ORDER = "ARRAY['active', 'downgrading', 'canceling', 'canceled', 'free']"

FROM_TENANT = """
CREATE OR REPLACE FUNCTION account_index_from_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_index (tenant_id, name_key, plan, country, created_at, deleted)
    VALUES (NEW.id, lower(NEW.name), NEW.plan, NEW.country, NEW.created_at, NEW.deleted_at IS NOT NULL)
    ON CONFLICT (tenant_id) DO UPDATE SET name_key = EXCLUDED.name_key, plan = EXCLUDED.plan,
        country = EXCLUDED.country, created_at = EXCLUDED.created_at, deleted = EXCLUDED.deleted;
    RETURN NULL;
END $$;
"""

FROM_SUBSCRIPTION = f"""
CREATE OR REPLACE FUNCTION account_index_from_subscription() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.tenant_id IS DISTINCT FROM NEW.tenant_id THEN
        UPDATE account_index SET subscription_id = NULL, status_rank = 4, mrr = 0, renewal_at = NULL, drift = false,
            priced = false, ledgered = false, currency = NULL
        WHERE tenant_id = OLD.tenant_id;
    END IF;
    UPDATE account_index SET subscription_id = NEW.id,
        status_rank = coalesce(array_position({STATUS_ORDER}, NEW.account_status) - 1, 4),
        mrr = NEW.forward_mrr, renewal_at = NEW.current_period_end, drift = NEW.has_drift_detected,
        priced = NEW.current_price_amount IS NOT NULL, currency = NEW.current_price_currency,
        ledgered = EXISTS (SELECT 1 FROM billing_events e WHERE e.subscription_id = NEW.id)
    WHERE tenant_id = NEW.tenant_id;
    RETURN NULL;
END $$;
"""

FROM_LEDGER = """
CREATE OR REPLACE FUNCTION account_index_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE account_index SET ledgered = true
    WHERE NOT ledgered AND subscription_id IN (SELECT DISTINCT subscription_id FROM appended);
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER tenants_account_index AFTER INSERT OR UPDATE OF name, plan, country, created_at, deleted_at
    ON tenants FOR EACH ROW EXECUTE FUNCTION account_index_from_tenant();
CREATE OR REPLACE TRIGGER subscriptions_account_index
    AFTER INSERT OR UPDATE OF tenant_id, account_status, forward_mrr, current_period_end, has_drift_detected,
        current_price_amount, current_price_currency
    ON subscriptions FOR EACH ROW EXECUTE FUNCTION account_index_from_subscription();
CREATE OR REPLACE TRIGGER billing_events_account_index AFTER INSERT ON billing_events
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION account_index_from_ledger();
"""


def recompute(platform_currency: str) -> Select:
    """One row per tenant, with its subscription's columns (the defaults when it has none)."""
    tenants, subscriptions, ledger = Tenant.__table__, Subscription.__table__, BillingEvent.__table__
    rank = func.array_position(literal_column(STATUS_ORDER), subscriptions.c.account_status) - 1
    ledgered = exists().where(ledger.c.subscription_id == subscriptions.c.id)
    return select(
        tenants.c.id.label("tenant_id"), subscriptions.c.id.label("subscription_id"),
        func.lower(tenants.c.name).label("name_key"), tenants.c.plan, tenants.c.country, tenants.c.created_at,
        tenants.c.deleted_at.is_not(None).label("deleted"),
        func.coalesce(rank, literal(4)).label("status_rank"),
        func.coalesce(subscriptions.c.forward_mrr, Decimal("0.00")).label("mrr"),
        subscriptions.c.current_period_end.label("renewal_at"),
        func.coalesce(subscriptions.c.has_drift_detected, false()).label("drift"),
        func.coalesce(subscriptions.c.current_price_amount.is_not(None), false()).label("priced"),
        ledgered.label("ledgered"), subscriptions.c.current_price_currency.label("currency"),
    ).select_from(tenants.outerjoin(subscriptions, subscriptions.c.tenant_id == tenants.c.id))


MODEL = ReadModel(
    table=AccountIndex.__table__,
    key=("tenant_id",),
    sources=("tenants", "subscriptions", "billing_events"),
    writer="triggers tenants_account_index, subscriptions_account_index, billing_events_account_index",
    readers=("read/account_list.py (the accounts list)", "read/dashboard.py (the tiles, the plan mix)",
             "billing/reconcile/health.py (the banners)"),
    recompute=recompute,
    sql=(FROM_TENANT, FROM_SUBSCRIPTION, FROM_LEDGER, TRIGGERS),
    functions=("account_index_from_tenant()", "account_index_from_subscription()", "account_index_from_ledger()"),
    triggers=(("tenants", "tenants_account_index"), ("subscriptions", "subscriptions_account_index"),
              ("billing_events", "billing_events_account_index")),
)
