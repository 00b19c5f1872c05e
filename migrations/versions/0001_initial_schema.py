"""Initial schema: product tables, the Stripe archive, the ledger and its append-only guards.

Revision ID: 0001_initial_schema
Revises:
Create Date: 2026-11-24 00:00:00

Tables, constraints and indexes mirror the models (so `flask db check` stays quiet); the pg_trgm
extension, the `effective_billing_events` view and the triggers of DESIGN §4.7 live only here,
because autogenerate neither creates nor compares them.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_initial_schema"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(precision=18, scale=2)
TIMESTAMP = sa.DateTime(timezone=True)
NOW = sa.text("now()")
FALSE = sa.text("false")

BILLING_EVENT_TYPES = (
    "'SubscriptionCreated', 'SubscriptionRenewed', 'SubscriptionUpgraded', 'SubscriptionDowngradeScheduled', "
    "'SubscriptionDowngradeCancelled', 'SubscriptionDowngraded', 'SubscriptionCancelled', "
    "'SubscriptionReactivated', 'SubscriptionExpired', 'SubscriptionImmediatelyCancelled', "
    "'SubscriptionSuspended', 'SubscriptionPastDue', 'PaymentFailed', 'PaymentRecovered', 'PaymentRefunded', "
    "'BillingInfoAdded', 'BillingInfoUpdated', 'PaymentMethodUpdated', 'NoOp', 'Unclassified', "
    "'LedgerBaseline'"
)
MOVEMENTS = "'new', 'reactivation', 'expansion', 'contraction', 'churn', 'other'"
AMOUNTS_ALL_OR_NONE = (
    "(previous_amount IS NULL) = (new_amount IS NULL) AND (new_amount IS NULL) = (amount_delta IS NULL)"
)
AMOUNT_DELTA = (
    "previous_amount IS NULL OR new_amount IS NULL OR amount_delta IS NULL "
    "OR new_amount - previous_amount = amount_delta"
)

APPEND_ONLY_TABLES = (
    "billing_events",
    "billing_event_corrections",
    "stripe_event_divergences",
    "operator_actions",
)


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    create_account_tables()
    create_operator_tables()
    create_billing_tables()
    create_effective_billing_events_view()
    create_append_only_guards()


def downgrade():
    op.execute("DROP VIEW effective_billing_events")
    # Dropping a table drops its triggers; the functions go after the tables that use them.
    for table in (
        "sync_state",
        "mrr_daily",
        "billing_event_corrections",
        "billing_events",
        "stripe_event_divergences",
        "stripe_events",
        "payment_transactions",
        "plan_prices",
        "subscriptions",
        "operator_actions",
        "operators",
        "sessions",
        "logins",
        "users",
        "tenants",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION guard_stripe_event_update()")
    op.execute("DROP FUNCTION refuse_append_only_change()")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")


def create_account_tables():
    """Create the product-side tables: tenants, users, logins, sessions."""
    op.create_table(
        "tenants",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("modified_at", TIMESTAMP, nullable=True),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.Column("state", sa.Text(), server_default="active", nullable=False),
        sa.Column("suspension_reason", sa.Text(), nullable=True),
        sa.Column("suspended_at", TIMESTAMP, nullable=True),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column("country", sa.Text(), nullable=True),
        sa.Column("logo", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.CheckConstraint("state IN ('active', 'suspended')", name=op.f("ck_tenants_state")),
        sa.CheckConstraint(
            "suspension_reason IS NULL OR suspension_reason IN ('payment_failed', 'customer_deleted')",
            name=op.f("ck_tenants_suspension_reason"),
        ),
        sa.CheckConstraint("country IS NULL OR country ~ '^[A-Z]{2}$'", name=op.f("ck_tenants_country")),
    )
    op.create_index(
        op.f("ix_tenants_name_trgm"),
        "tenants",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        op.f("ix_tenants_created_at_not_deleted"),
        "tenants",
        ["created_at"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )

    op.create_table(
        "users",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), server_default="member", nullable=False),
        sa.Column("email_confirmed", sa.Boolean(), server_default=FALSE, nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("modified_at", TIMESTAMP, nullable=True),
        sa.Column("last_seen_at", TIMESTAMP, nullable=True),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.Column("avatar", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_users_tenant_id_tenants")),
        sa.CheckConstraint("role IN ('owner', 'admin', 'member')", name=op.f("ck_users_role")),
    )
    op.create_index(op.f("ix_users_tenant_id"), "users", ["tenant_id"])
    op.create_index(op.f("ix_users_last_seen_at"), "users", ["last_seen_at"])
    op.create_index(op.f("ix_users_email_lower"), "users", [sa.text("lower(email)")])
    for column in ("email", "first_name", "last_name"):
        op.create_index(
            op.f(f"ix_users_{column}_trgm"),
            "users",
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )
    op.create_index(
        op.f("uq_users_tenant_id_email_not_deleted"),
        "users",
        ["tenant_id", "email"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )

    op.create_table(
        "logins",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("ip_address", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logins")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_logins_user_id_users")),
        sa.CheckConstraint("method IN ('one_time_password', 'google')", name=op.f("ck_logins_method")),
        sa.CheckConstraint("outcome IN ('succeeded', 'failed', 'pending')", name=op.f("ck_logins_outcome")),
    )
    op.create_index(op.f("ix_logins_email_created_at"), "logins", ["email", sa.text("created_at DESC")])
    op.create_index(op.f("ix_logins_user_id_created_at"), "logins", ["user_id", sa.text("created_at DESC")])

    op.create_table(
        "sessions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("last_active_at", TIMESTAMP, nullable=True),
        sa.Column("login_method", sa.Text(), nullable=False),
        sa.Column("ip_address", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_sessions_tenant_id_tenants")),
        sa.CheckConstraint(
            "login_method IN ('one_time_password', 'google')", name=op.f("ck_sessions_login_method")
        ),
        sa.CheckConstraint(
            "revoked_reason IS NULL OR revoked_reason IN "
            "('logged_out', 'revoked', 'replay_attack_detected', 'switch_tenant')",
            name=op.f("ck_sessions_revoked_reason"),
        ),
    )
    op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"])
    op.create_index(
        op.f("ix_sessions_tenant_id_active"),
        "sessions",
        ["tenant_id"],
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def create_operator_tables():
    """Create the operators and their append-only audit log."""
    op.create_table(
        "operators",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("is_admin", sa.Boolean(), server_default=FALSE, nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("preferences", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
    )

    op.create_table(
        "operator_actions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("operator_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target_tenant_id", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.Column("at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_actions")),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name=op.f("fk_operator_actions_operator_id_operators")
        ),
        sa.ForeignKeyConstraint(
            ["target_tenant_id"], ["tenants.id"], name=op.f("fk_operator_actions_target_tenant_id_tenants")
        ),
        sa.CheckConstraint(
            "action IN ('sync', 'reconcile', 'acknowledge_drift', 'disaster_recovery', 'retry_event', "
            "'sweep', 'replay', 'rebuild_rollups')",
            name=op.f("ck_operator_actions_action"),
        ),
        sa.CheckConstraint("btrim(reason) <> ''", name=op.f("ck_operator_actions_reason_not_blank")),
    )
    op.create_index(op.f("ix_operator_actions_at"), "operator_actions", [sa.text("at DESC")])
    op.create_index(
        op.f("ix_operator_actions_operator_id_at"), "operator_actions", ["operator_id", sa.text("at DESC")]
    )
    op.create_index(
        op.f("ix_operator_actions_target_tenant_id_at"),
        "operator_actions",
        ["target_tenant_id", sa.text("at DESC")],
    )


def create_billing_tables():
    """Create the projection, catalog, payments, archive, ledger, rollup and job-state tables."""
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("modified_at", TIMESTAMP, nullable=True),
        sa.Column("stripe_customer_id", sa.Text(), nullable=True),
        sa.Column("stripe_subscription_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column("scheduled_plan", sa.Text(), nullable=True),
        sa.Column("current_price_amount", MONEY, nullable=True),
        sa.Column("current_price_currency", sa.Text(), nullable=True),
        sa.Column("scheduled_price_amount", MONEY, nullable=True),
        sa.Column("current_period_end", TIMESTAMP, nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), server_default=FALSE, nullable=False),
        sa.Column("cancellation_reason", sa.Text(), nullable=True),
        sa.Column("first_payment_failed_at", TIMESTAMP, nullable=True),
        sa.Column("subscribed_since", TIMESTAMP, nullable=True),
        sa.Column("forward_mrr", MONEY, server_default="0", nullable=False),
        sa.Column("account_status", sa.Text(), server_default="free", nullable=False),
        sa.Column("payment_method", postgresql.JSONB(), nullable=True),
        sa.Column("billing_info", postgresql.JSONB(), nullable=True),
        sa.Column("history_complete_from", TIMESTAMP, nullable=True),
        sa.Column("has_drift_detected", sa.Boolean(), server_default=FALSE, nullable=False),
        sa.Column("drift_checked_at", TIMESTAMP, nullable=True),
        sa.Column(
            "drift_discrepancies", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
        sa.Column("drift_acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("drift_acknowledged_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_subscriptions_tenant_id")),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_subscriptions_stripe_customer_id")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_subscriptions_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["drift_acknowledged_by"],
            ["operators.id"],
            name=op.f("fk_subscriptions_drift_acknowledged_by_operators"),
        ),
        sa.CheckConstraint(
            "status IS NULL OR status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', "
            "'past_due', 'canceled', 'unpaid', 'paused')",
            name=op.f("ck_subscriptions_status"),
        ),
        sa.CheckConstraint(
            "account_status IN ('active', 'downgrading', 'canceling', 'canceled', 'free')",
            name=op.f("ck_subscriptions_account_status"),
        ),
        sa.CheckConstraint(
            "current_price_currency IS NULL OR current_price_currency ~ '^[A-Z]{3}$'",
            name=op.f("ck_subscriptions_current_price_currency"),
        ),
        sa.CheckConstraint(
            "(current_price_amount IS NULL OR current_price_amount >= 0) "
            "AND (scheduled_price_amount IS NULL OR scheduled_price_amount >= 0) AND forward_mrr >= 0",
            name=op.f("ck_subscriptions_amounts_non_negative"),
        ),
        sa.CheckConstraint(
            "jsonb_typeof(drift_discrepancies) = 'array'",
            name=op.f("ck_subscriptions_drift_discrepancies_array"),
        ),
    )
    op.create_index(op.f("ix_subscriptions_forward_mrr"), "subscriptions", ["forward_mrr"])
    op.create_index(op.f("ix_subscriptions_account_status"), "subscriptions", ["account_status"])
    op.create_index(op.f("ix_subscriptions_drift_checked_at"), "subscriptions", ["drift_checked_at"])
    op.create_index(
        op.f("ix_subscriptions_drift_detected"),
        "subscriptions",
        ["tenant_id"],
        postgresql_where=sa.text("has_drift_detected"),
    )

    op.create_table(
        "plan_prices",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("product_id", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column("unit_amount", MONEY, nullable=True),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("interval", sa.Text(), nullable=True),
        sa.Column("interval_count", sa.Integer(), nullable=True),
        sa.Column("tax_behavior", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("fetched_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_prices")),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_plan_prices_currency")),
        sa.CheckConstraint(
            "interval IS NULL OR interval IN ('day', 'week', 'month', 'year')",
            name=op.f("ck_plan_prices_interval"),
        ),
        sa.CheckConstraint(
            "interval_count IS NULL OR interval_count > 0",
            name=op.f("ck_plan_prices_interval_count_positive"),
        ),
        sa.CheckConstraint(
            "tax_behavior IS NULL OR tax_behavior IN ('inclusive', 'exclusive', 'unspecified')",
            name=op.f("ck_plan_prices_tax_behavior"),
        ),
        sa.CheckConstraint(
            "unit_amount IS NULL OR unit_amount >= 0", name=op.f("ck_plan_prices_unit_amount_non_negative")
        ),
    )
    op.create_index(op.f("ix_plan_prices_plan"), "plan_prices", ["plan"])

    op.create_table(
        "payment_transactions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("subscription_id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("amount_excluding_tax", MONEY, nullable=False),
        sa.Column("tax_amount", MONEY, server_default="0", nullable=False),
        sa.Column("invoice_total", MONEY, nullable=False),
        sa.Column("amount_from_credit", MONEY, server_default="0", nullable=False),
        sa.Column("refunded_amount", MONEY, server_default="0", nullable=False),
        sa.Column("credited_amount", MONEY, server_default="0", nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("date", TIMESTAMP, nullable=False),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column("invoice_url", sa.Text(), nullable=True),
        sa.Column("credit_note_url", sa.Text(), nullable=True),
        sa.Column("credit_noted_at", TIMESTAMP, nullable=True),
        sa.Column("refunded_at", TIMESTAMP, nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("modified_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_transactions")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_payment_transactions_subscription_id_subscriptions"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_payment_transactions_tenant_id_tenants")
        ),
        sa.CheckConstraint(
            "amount >= 0 AND amount_excluding_tax >= 0 AND tax_amount >= 0 AND invoice_total >= 0 "
            "AND amount_from_credit >= 0 AND refunded_amount >= 0 AND credited_amount >= 0",
            name=op.f("ck_payment_transactions_amounts_non_negative"),
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_payment_transactions_currency")),
        sa.CheckConstraint(
            "status IN ('succeeded', 'refunded', 'failed', 'pending', 'cancelled')",
            name=op.f("ck_payment_transactions_status"),
        ),
    )
    op.create_index(
        op.f("ix_payment_transactions_subscription_id"), "payment_transactions", ["subscription_id"]
    )
    op.create_index(
        op.f("ix_payment_transactions_tenant_id_date"),
        "payment_transactions",
        ["tenant_id", sa.text("date DESC")],
    )
    op.create_index(op.f("ix_payment_transactions_date"), "payment_transactions", [sa.text("date DESC")])

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("received_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.Column("stripe_created_at", TIMESTAMP, nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("api_version", sa.Text(), nullable=True),
        sa.Column("stripe_customer_id", sa.Text(), nullable=True),
        sa.Column("stripe_subscription_id", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("payload_hash", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("processed_at", TIMESTAMP, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("recovered_at", TIMESTAMP, nullable=True),
        sa.Column("recovery_source", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_stripe_events_tenant_id_tenants")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processed', 'ignored', 'failed')", name=op.f("ck_stripe_events_status")
        ),
        sa.CheckConstraint(
            "recovery_source IS NULL OR recovery_source IN ('events_list', 'delivery_audit')",
            name=op.f("ck_stripe_events_recovery_source"),
        ),
        sa.CheckConstraint(
            "(recovered_at IS NULL) = (recovery_source IS NULL)",
            name=op.f("ck_stripe_events_recovered_with_source"),
        ),
        sa.CheckConstraint(
            "payload_hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_stripe_events_payload_hash_sha256")
        ),
    )
    op.create_index(
        op.f("ix_stripe_events_stripe_customer_id_status"), "stripe_events", ["stripe_customer_id", "status"]
    )
    op.create_index(op.f("ix_stripe_events_tenant_id"), "stripe_events", ["tenant_id"])
    op.create_index(op.f("ix_stripe_events_stripe_created_at"), "stripe_events", ["stripe_created_at"])
    op.create_index(
        op.f("ix_stripe_events_recovered_at"),
        "stripe_events",
        ["recovered_at"],
        postgresql_where=sa.text("recovered_at IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_stripe_events_status_unsettled"),
        "stripe_events",
        ["status", "received_at"],
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
    )

    op.create_table(
        "stripe_event_divergences",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("stripe_event_id", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("payload_hash", sa.Text(), nullable=False),
        sa.Column("received_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_event_divergences")),
        sa.UniqueConstraint(
            "stripe_event_id",
            "payload_hash",
            name=op.f("uq_stripe_event_divergences_stripe_event_id_payload_hash"),
        ),
        sa.ForeignKeyConstraint(
            ["stripe_event_id"],
            ["stripe_events.id"],
            name=op.f("fk_stripe_event_divergences_stripe_event_id_stripe_events"),
        ),
        sa.CheckConstraint(
            "payload_hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_stripe_event_divergences_payload_hash_sha256")
        ),
    )

    op.create_table(
        "billing_events",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("subscription_id", sa.Text(), nullable=False),
        sa.Column("stripe_event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("from_plan", sa.Text(), nullable=True),
        sa.Column("to_plan", sa.Text(), nullable=True),
        sa.Column("previous_amount", MONEY, nullable=True),
        sa.Column("new_amount", MONEY, nullable=True),
        sa.Column("amount_delta", MONEY, nullable=True),
        sa.Column("committed_mrr", MONEY, nullable=False),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("movement", sa.Text(), nullable=True),
        sa.Column("cancellation_reason", sa.Text(), nullable=True),
        sa.Column("suspension_reason", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_events")),
        sa.UniqueConstraint("stripe_event_id", name=op.f("uq_billing_events_stripe_event_id")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_billing_events_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_billing_events_subscription_id_subscriptions"),
        ),
        sa.CheckConstraint(
            f"event_type IN ({BILLING_EVENT_TYPES})", name=op.f("ck_billing_events_event_type")
        ),
        sa.CheckConstraint(
            f"movement IS NULL OR movement IN ({MOVEMENTS})", name=op.f("ck_billing_events_movement")
        ),
        sa.CheckConstraint(
            "suspension_reason IS NULL OR suspension_reason IN ('payment_failed', 'customer_deleted')",
            name=op.f("ck_billing_events_suspension_reason"),
        ),
        sa.CheckConstraint(
            "currency IS NULL OR currency ~ '^[A-Z]{3}$'", name=op.f("ck_billing_events_currency")
        ),
        sa.CheckConstraint("committed_mrr >= 0", name=op.f("ck_billing_events_committed_mrr_non_negative")),
        sa.CheckConstraint(AMOUNTS_ALL_OR_NONE, name=op.f("ck_billing_events_amounts_all_or_none")),
        sa.CheckConstraint(AMOUNT_DELTA, name=op.f("ck_billing_events_amount_delta")),
    )
    op.create_index(
        op.f("ix_billing_events_tenant_id_occurred_at"),
        "billing_events",
        ["tenant_id", sa.text("occurred_at DESC")],
    )
    op.create_index(op.f("ix_billing_events_occurred_at"), "billing_events", [sa.text("occurred_at DESC")])
    op.create_index(
        op.f("ix_billing_events_subscription_id_occurred_at_position"),
        "billing_events",
        ["subscription_id", "occurred_at", "position"],
    )

    op.create_table(
        "billing_event_corrections",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("billing_event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("from_plan", sa.Text(), nullable=True),
        sa.Column("to_plan", sa.Text(), nullable=True),
        sa.Column("previous_amount", MONEY, nullable=True),
        sa.Column("new_amount", MONEY, nullable=True),
        sa.Column("amount_delta", MONEY, nullable=True),
        sa.Column("committed_mrr", MONEY, nullable=False),
        sa.Column("movement", sa.Text(), nullable=True),
        sa.Column("caused_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_event_corrections")),
        sa.ForeignKeyConstraint(
            ["billing_event_id"],
            ["billing_events.id"],
            name=op.f("fk_billing_event_corrections_billing_event_id_billing_events"),
        ),
        sa.CheckConstraint(
            f"event_type IN ({BILLING_EVENT_TYPES})", name=op.f("ck_billing_event_corrections_event_type")
        ),
        sa.CheckConstraint(
            f"movement IS NULL OR movement IN ({MOVEMENTS})",
            name=op.f("ck_billing_event_corrections_movement"),
        ),
        sa.CheckConstraint(
            "committed_mrr >= 0", name=op.f("ck_billing_event_corrections_committed_mrr_non_negative")
        ),
        sa.CheckConstraint(
            AMOUNTS_ALL_OR_NONE, name=op.f("ck_billing_event_corrections_amounts_all_or_none")
        ),
        sa.CheckConstraint(AMOUNT_DELTA, name=op.f("ck_billing_event_corrections_amount_delta")),
    )
    op.create_index(
        op.f("ix_billing_event_corrections_billing_event_id_at_id"),
        "billing_event_corrections",
        ["billing_event_id", "at", "id"],
    )

    op.create_table(
        "mrr_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("movement", sa.Text(), nullable=False),
        sa.Column("delta_sum", MONEY, server_default="0", nullable=False),
        sa.Column("event_count", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", "currency", "movement", name=op.f("pk_mrr_daily")),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_mrr_daily_currency")),
        sa.CheckConstraint(f"movement IN ({MOVEMENTS})", name=op.f("ck_mrr_daily_movement")),
        sa.CheckConstraint("event_count >= 0", name=op.f("ck_mrr_daily_event_count_non_negative")),
    )

    op.create_table(
        "sync_state",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sync_state")),
    )


def create_effective_billing_events_view():
    """Create the view that applies each ledger row's latest correction (DESIGN §4.6)."""
    # A correction carries the complete corrected values, so the latest one replaces the row's values
    # wholesale (CASE, not COALESCE): a row that became a NoOp must be able to show null amounts.
    op.execute(
        """
        CREATE VIEW effective_billing_events AS
        SELECT
            e.id,
            e.tenant_id,
            e.subscription_id,
            e.stripe_event_id,
            CASE WHEN c.id IS NULL THEN e.event_type ELSE c.event_type END AS event_type,
            CASE WHEN c.id IS NULL THEN e.from_plan ELSE c.from_plan END AS from_plan,
            CASE WHEN c.id IS NULL THEN e.to_plan ELSE c.to_plan END AS to_plan,
            CASE WHEN c.id IS NULL THEN e.previous_amount ELSE c.previous_amount END AS previous_amount,
            CASE WHEN c.id IS NULL THEN e.new_amount ELSE c.new_amount END AS new_amount,
            CASE WHEN c.id IS NULL THEN e.amount_delta ELSE c.amount_delta END AS amount_delta,
            CASE WHEN c.id IS NULL THEN e.committed_mrr ELSE c.committed_mrr END AS committed_mrr,
            e.currency,
            e.occurred_at,
            e.position,
            CASE WHEN c.id IS NULL THEN e.movement ELSE c.movement END AS movement,
            e.cancellation_reason,
            e.suspension_reason,
            e.created_at,
            c.id IS NOT NULL AS corrected,
            c.at AS corrected_at,
            c.id AS correction_id
        FROM billing_events AS e
        LEFT JOIN LATERAL (
            SELECT latest.*
            FROM billing_event_corrections AS latest
            WHERE latest.billing_event_id = e.id
            ORDER BY latest.at DESC, latest.id DESC
            LIMIT 1
        ) AS c ON true
        """
    )


def create_append_only_guards():
    """Create the triggers that make PostgreSQL enforce DESIGN §4.7."""
    # restrict_violation (23001) is an integrity error class, so drivers raise IntegrityError. Messages
    # are concatenated rather than RAISE's % placeholders, which `flask db upgrade --sql` would double.
    op.execute(
        """
        CREATE FUNCTION refuse_append_only_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING
                MESSAGE = TG_OP || ' on ' || TG_TABLE_NAME || ' is refused: the table is append-only',
                ERRCODE = 'restrict_violation',
                HINT = 'Append a new row instead (DESIGN 4.7).';
        END;
        $$
        """
    )
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change()"
        )
    for table in (*APPEND_ONLY_TABLES, "stripe_events"):
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change()"
        )
    op.execute(
        "CREATE TRIGGER stripe_events_no_delete BEFORE DELETE ON stripe_events "
        "FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change()"
    )

    # The archive allows exactly the moves of DESIGN 4.7. Columns are checked by an allow-list, so a
    # column added later is immutable unless this function is changed on purpose. A "move" is any
    # change of status, processed_at or error; failed -> failed is a move (a retry recording a new
    # error). Linking (tenant_id, stripe_subscription_id set once from null) and a no-op are not moves,
    # so they are allowed in any status.
    op.execute(
        """
        CREATE FUNCTION guard_stripe_event_update() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            changed text;
            allowed_move boolean;
        BEGIN
            SELECT string_agg(new_row.key, ', ' ORDER BY new_row.key) INTO changed
            FROM jsonb_each(to_jsonb(NEW)) AS new_row
            JOIN jsonb_each(to_jsonb(OLD)) AS old_row USING (key)
            WHERE new_row.value IS DISTINCT FROM old_row.value
              AND new_row.key NOT IN
                  ('status', 'processed_at', 'error', 'tenant_id', 'stripe_subscription_id');
            IF changed IS NOT NULL THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'stripe_events ' || OLD.id || ': ' || changed || ' cannot change',
                    ERRCODE = 'restrict_violation',
                    HINT = 'The archive is append-only (DESIGN 4.7).';
            END IF;

            IF OLD.tenant_id IS NOT NULL AND NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'stripe_events ' || OLD.id || ': tenant_id is already ' || OLD.tenant_id,
                    ERRCODE = 'restrict_violation',
                    HINT = 'tenant_id may only be set once, from null.';
            END IF;
            IF OLD.stripe_subscription_id IS NOT NULL
               AND NEW.stripe_subscription_id IS DISTINCT FROM OLD.stripe_subscription_id THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'stripe_events ' || OLD.id || ': stripe_subscription_id is already '
                        || OLD.stripe_subscription_id,
                    ERRCODE = 'restrict_violation',
                    HINT = 'stripe_subscription_id may only be set once, from null.';
            END IF;

            allowed_move := CASE OLD.status
                WHEN 'pending' THEN NEW.status IN ('processed', 'ignored', 'failed')
                WHEN 'ignored' THEN NEW.status IN ('processed', 'failed')
                WHEN 'failed' THEN NEW.status IN ('processed', 'failed')
                ELSE false
            END;
            IF (NEW.status, NEW.processed_at, NEW.error)
                   IS DISTINCT FROM (OLD.status, OLD.processed_at, OLD.error)
               AND NOT allowed_move THEN
                RAISE EXCEPTION USING
                    MESSAGE = 'stripe_events ' || OLD.id || ': status cannot move from ' || OLD.status
                        || ' to ' || NEW.status,
                    ERRCODE = 'restrict_violation',
                    HINT = 'pending -> processed|ignored|failed, ignored -> processed|failed, '
                           'failed -> processed|failed; processed_at and error change only with such a move.';
            END IF;
            RETURN NEW;
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER stripe_events_guard_update BEFORE UPDATE ON stripe_events "
        "FOR EACH ROW EXECUTE FUNCTION guard_stripe_event_update()"
    )
