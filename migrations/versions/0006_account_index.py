"""The accounts list's read model: one narrow row per tenant, kept by triggers, with an index per order.

The list filters and sorts on columns of two tables (tenant name, country, creation; subscription status,
forward MRR, renewal). Sorting 100,000 joined rows for every page costs tens of milliseconds; reading the
first page of an index costs well under one. `account_index` copies exactly the columns the list finds and
orders by, and the database keeps it: a trigger on tenants and one on subscriptions write it in the same
transaction as the change, so no code path can forget it and it can never be stale. A statement trigger on
billing_events marks a subscription's first ledger row, so "priced but never ledgered" (the unsynced filter)
is a column test rather than an anti-join over the ledger.

Revision ID: 0006_account_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_account_index"
down_revision = "0005_payload_expression_indexes"
branch_labels = None
depends_on = None

# The accounts list's status order (reference §6): Active, Downgrading, Canceling, Canceled, Free.
STATUS_ORDER = "ARRAY['active', 'downgrading', 'canceling', 'canceled', 'free']"

# (index, columns): every sort of the list, in both directions, each ending in name then id.
ORDERS = (
    ("ix_account_index_name", ["name_key", "tenant_id"]),
    ("ix_account_index_mrr", ["mrr", "name_key", "tenant_id"]),
    ("ix_account_index_mrr_desc", [sa.text("mrr DESC"), "name_key", "tenant_id"]),
    ("ix_account_index_renewal", [sa.text("(renewal_at IS NULL)"), "renewal_at", "name_key", "tenant_id"]),
    ("ix_account_index_renewal_desc", [sa.text("(renewal_at IS NULL)"), sa.text("renewal_at DESC"), "name_key",
                                       "tenant_id"]),
    ("ix_account_index_status", ["status_rank", "name_key", "tenant_id"]),
    ("ix_account_index_status_desc", [sa.text("status_rank DESC"), "name_key", "tenant_id"]),
    ("ix_account_index_country", [sa.text("(country IS NULL)"), "country", "name_key", "tenant_id"]),
    ("ix_account_index_country_desc", [sa.text("(country IS NULL)"), sa.text("country DESC"), "name_key",
                                       "tenant_id"]),
    ("ix_account_index_created", ["created_at", "name_key", "tenant_id"]),
    ("ix_account_index_created_desc", [sa.text("created_at DESC"), "name_key", "tenant_id"]),
)

FUNCTIONS = f"""
CREATE FUNCTION account_index_from_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO account_index (tenant_id, name_key, plan, country, created_at, deleted)
    VALUES (NEW.id, lower(NEW.name), NEW.plan, NEW.country, NEW.created_at, NEW.deleted_at IS NOT NULL)
    ON CONFLICT (tenant_id) DO UPDATE SET name_key = EXCLUDED.name_key, plan = EXCLUDED.plan,
        country = EXCLUDED.country, created_at = EXCLUDED.created_at, deleted = EXCLUDED.deleted;
    RETURN NULL;
END $$;

CREATE FUNCTION account_index_from_subscription() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.tenant_id IS DISTINCT FROM NEW.tenant_id THEN
        UPDATE account_index SET subscription_id = NULL, status_rank = 4, mrr = 0, renewal_at = NULL, drift = false,
            priced = false, ledgered = false
        WHERE tenant_id = OLD.tenant_id;
    END IF;
    UPDATE account_index SET subscription_id = NEW.id,
        status_rank = coalesce(array_position({STATUS_ORDER}, NEW.account_status) - 1, 4),
        mrr = NEW.forward_mrr, renewal_at = NEW.current_period_end, drift = NEW.has_drift_detected,
        priced = NEW.current_price_amount IS NOT NULL,
        ledgered = EXISTS (SELECT 1 FROM billing_events e WHERE e.subscription_id = NEW.id)
    WHERE tenant_id = NEW.tenant_id;
    RETURN NULL;
END $$;

CREATE FUNCTION account_index_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE account_index SET ledgered = true
    WHERE NOT ledgered AND subscription_id IN (SELECT DISTINCT subscription_id FROM appended);
    RETURN NULL;
END $$;

CREATE TRIGGER tenants_account_index AFTER INSERT OR UPDATE OF name, plan, country, created_at, deleted_at
    ON tenants FOR EACH ROW EXECUTE FUNCTION account_index_from_tenant();
CREATE TRIGGER subscriptions_account_index
    AFTER INSERT OR UPDATE OF tenant_id, account_status, forward_mrr, current_period_end, has_drift_detected,
        current_price_amount
    ON subscriptions FOR EACH ROW EXECUTE FUNCTION account_index_from_subscription();
CREATE TRIGGER billing_events_account_index AFTER INSERT ON billing_events
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION account_index_from_ledger();
"""

BACKFILL = f"""
INSERT INTO account_index (tenant_id, subscription_id, name_key, plan, country, created_at, deleted, status_rank, mrr,
                           renewal_at, drift, priced, ledgered)
SELECT t.id, s.id, lower(t.name), t.plan, t.country, t.created_at, t.deleted_at IS NOT NULL,
       coalesce(array_position({STATUS_ORDER}, s.account_status) - 1, 4), coalesce(s.forward_mrr, 0),
       s.current_period_end, coalesce(s.has_drift_detected, false), coalesce(s.current_price_amount IS NOT NULL, false),
       EXISTS (SELECT 1 FROM billing_events e WHERE e.subscription_id = s.id)
FROM tenants t LEFT JOIN subscriptions s ON s.tenant_id = t.id
"""


def upgrade():
    op.create_table(
        "account_index",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("subscription_id", sa.Text(), nullable=True),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column("country", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("status_rank", sa.SmallInteger(), server_default="4", nullable=False),
        sa.Column("mrr", sa.Numeric(18, 2), server_default="0", nullable=False),
        sa.Column("renewal_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drift", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("priced", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("ledgered", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_account_index_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_account_index")),
    )
    op.execute(BACKFILL)
    for name, columns in ORDERS:
        op.create_index(name, "account_index", columns, postgresql_where=sa.text("NOT deleted"))
    op.create_index("ix_account_index_name_key_trgm", "account_index", ["name_key"], postgresql_using="gin",
                    postgresql_ops={"name_key": "gin_trgm_ops"})
    # The ledger's trigger finds a subscription's row by it on every append.
    op.create_index("ix_account_index_subscription_id", "account_index", ["subscription_id"])
    op.execute(FUNCTIONS)


def downgrade():
    op.execute("DROP TRIGGER billing_events_account_index ON billing_events")
    op.execute("DROP FUNCTION account_index_from_ledger()")
    op.execute("DROP TRIGGER subscriptions_account_index ON subscriptions")
    op.execute("DROP TRIGGER tenants_account_index ON tenants")
    op.execute("DROP FUNCTION account_index_from_subscription()")
    op.execute("DROP FUNCTION account_index_from_tenant()")
    op.drop_table("account_index")
