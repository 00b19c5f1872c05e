"""The dashboard and the banners at scale: each subscription's latest committed MRR kept by triggers, and
indexes that let the KPI tiles and the plan mix count without reading the tables; the deleted accounts by id.

The MRR consistency banner sums each subscription's latest effective committed MRR on every poll of every
open page; looked up per subscription through `effective_billing_events` that costs 0.4 s at 30,000
subscriptions. `ledger_tips` holds that latest row's figure per subscription and currency (rows before a price have none), recomputed from the
view by statement triggers for the subscriptions a statement appends to or corrects — the database derives it
from the ledger alone, so the banner still compares the ledger with the projection. The tiles and the plan mix
count live accounts from `account_index` by plan and creation (index-only), blended MRR from the
subscriptions by currency, and active users from `user_seen_daily` — live users by the day they were last
seen, kept by triggers on users and tenants — as one row per day of the period, not one per user. A users
search leaves the deleted accounts' users out by a hashed list of those accounts, found by their own index.

Revision ID: 0010_dashboard_at_scale
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_dashboard_at_scale"
down_revision = "0009_users_surface"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION ledger_tips_refresh(subscriptions text[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO ledger_tips (subscription_id, currency, committed_mrr, occurred_at, position)
    SELECT DISTINCT ON (v.subscription_id, v.currency) v.subscription_id, v.currency, v.committed_mrr,
           v.occurred_at, v.position
    FROM effective_billing_events AS v
    WHERE v.subscription_id = ANY (subscriptions) AND v.currency IS NOT NULL
    ORDER BY v.subscription_id, v.currency, v.occurred_at DESC, v.position DESC
    ON CONFLICT (subscription_id, currency) DO UPDATE SET committed_mrr = EXCLUDED.committed_mrr,
        occurred_at = EXCLUDED.occurred_at, position = EXCLUDED.position;
$$;

CREATE FUNCTION ledger_tips_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_tips_refresh(ARRAY(SELECT DISTINCT a.subscription_id FROM appended AS a
                                      WHERE a.subscription_id IS NOT NULL));
    RETURN NULL;
END $$;

CREATE FUNCTION ledger_tips_from_correction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_tips_refresh(ARRAY(SELECT DISTINCT e.subscription_id FROM corrected AS c
                                      JOIN billing_events AS e ON e.id = c.billing_event_id
                                      WHERE e.subscription_id IS NOT NULL));
    RETURN NULL;
END $$;

CREATE TRIGGER billing_events_ledger_tips AFTER INSERT ON billing_events
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION ledger_tips_from_ledger();
CREATE TRIGGER billing_event_corrections_ledger_tips AFTER INSERT ON billing_event_corrections
    REFERENCING NEW TABLE AS corrected FOR EACH STATEMENT EXECUTE FUNCTION ledger_tips_from_correction();
"""

# A user counts on the day it was last seen while it and its account are live.
SEEN_DAY = "({u}.last_seen_at AT TIME ZONE 'UTC')::date"
COUNTED = "{u}.deleted_at IS NULL AND {u}.last_seen_at IS NOT NULL AND {t}.deleted_at IS NULL"


def _apply(rows: str, sign: str) -> str:
    """Add (or take away) the counted users among `rows` to their days."""
    return f"""
        INSERT INTO user_seen_daily (day, users)
        SELECT {SEEN_DAY.format(u="u")}, {sign}count(*) FROM {rows} AS u JOIN tenants AS t ON t.id = u.tenant_id
        WHERE {COUNTED.format(u="u", t="t")} GROUP BY 1
        ON CONFLICT (day) DO UPDATE SET users = user_seen_daily.users + EXCLUDED.users;"""


# Users: what a statement changed moves between days (each user is counted against its account as it is now,
# which the tenants trigger keeps true). Tenants: an account deleted or restored takes its users off or back.
SEEN_FUNCTIONS = f"""
CREATE FUNCTION user_seen_daily_from_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN {_apply("old_users", "-")}
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN {_apply("new_users", "")}
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION user_seen_daily_from_tenants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_seen_daily (day, users)
    SELECT {SEEN_DAY.format(u="u")}, sum(CASE WHEN n.deleted_at IS NULL THEN 1 ELSE -1 END)
    FROM new_tenants AS n JOIN old_tenants AS o ON o.id = n.id JOIN users AS u ON u.tenant_id = n.id
    WHERE (n.deleted_at IS NULL) <> (o.deleted_at IS NULL) AND u.deleted_at IS NULL AND u.last_seen_at IS NOT NULL
    GROUP BY 1
    ON CONFLICT (day) DO UPDATE SET users = user_seen_daily.users + EXCLUDED.users;
    RETURN NULL;
END $$;

CREATE TRIGGER users_user_seen_daily_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_users FOR EACH STATEMENT EXECUTE FUNCTION user_seen_daily_from_users();
CREATE TRIGGER users_user_seen_daily_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_users NEW TABLE AS new_users FOR EACH STATEMENT
    EXECUTE FUNCTION user_seen_daily_from_users();
CREATE TRIGGER users_user_seen_daily_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_users FOR EACH STATEMENT EXECUTE FUNCTION user_seen_daily_from_users();
CREATE TRIGGER tenants_user_seen_daily AFTER UPDATE ON tenants
    REFERENCING OLD TABLE AS old_tenants NEW TABLE AS new_tenants FOR EACH STATEMENT
    EXECUTE FUNCTION user_seen_daily_from_tenants();
"""


def upgrade():
    op.create_table(
        "ledger_tips",
        sa.Column("subscription_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("committed_mrr", sa.Numeric(18, 2), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", "currency", name=op.f("pk_ledger_tips")),
    )
    op.execute("""
        INSERT INTO ledger_tips (subscription_id, currency, committed_mrr, occurred_at, position)
        SELECT DISTINCT ON (subscription_id, currency) subscription_id, currency, committed_mrr, occurred_at, position
        FROM effective_billing_events WHERE subscription_id IS NOT NULL AND currency IS NOT NULL
        ORDER BY subscription_id, currency, occurred_at DESC, position DESC
    """)
    op.execute(FUNCTIONS)
    op.create_index("ix_account_index_plan", "account_index", ["plan"], postgresql_where=sa.text("NOT deleted"))
    op.create_table(
        "user_seen_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("users", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_user_seen_daily")),
    )
    op.execute(f"""
        INSERT INTO user_seen_daily (day, users)
        SELECT {SEEN_DAY.format(u="u")}, count(*) FROM users AS u JOIN tenants AS t ON t.id = u.tenant_id
        WHERE {COUNTED.format(u="u", t="t")} GROUP BY 1
    """)
    op.execute(SEEN_FUNCTIONS)
    op.create_index("ix_tenants_deleted", "tenants", ["id"], postgresql_where=sa.text("deleted_at IS NOT NULL"))
    op.create_index("ix_subscriptions_currency_mrr", "subscriptions", ["current_price_currency"],
                    postgresql_include=["forward_mrr"])


def downgrade():
    op.drop_index("ix_subscriptions_currency_mrr", table_name="subscriptions")
    op.drop_index("ix_tenants_deleted", table_name="tenants")
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER users_user_seen_daily_{event} ON users")
    op.execute("DROP TRIGGER tenants_user_seen_daily ON tenants")
    op.execute("DROP FUNCTION user_seen_daily_from_tenants()")
    op.execute("DROP FUNCTION user_seen_daily_from_users()")
    op.drop_table("user_seen_daily")
    op.drop_index("ix_account_index_plan", table_name="account_index")
    op.execute("DROP TRIGGER billing_event_corrections_ledger_tips ON billing_event_corrections")
    op.execute("DROP TRIGGER billing_events_ledger_tips ON billing_events")
    op.execute("DROP FUNCTION ledger_tips_from_correction()")
    op.execute("DROP FUNCTION ledger_tips_from_ledger()")
    op.execute("DROP FUNCTION ledger_tips_refresh(text[])")
    op.drop_table("ledger_tips")
