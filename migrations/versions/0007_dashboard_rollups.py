"""The dashboard's rollups and indexes: net revenue and sign-ins per day, kept by triggers; sessions by time.

The revenue chart and the Total revenue tile sum net revenue up to a day (DESIGN §4.10). Summed from the
payments, that costs in proportion to the whole history; `revenue_daily` holds each day's net movement, so
they cost in proportion to the days of history at most (a few hundred rows), and the chart's window to its
days. A row trigger on payment_transactions takes the old row's movements out and puts the new row's in, in
the same transaction as the change: no code path can forget it. The dashboard tests compare it with net revenue
summed from the payments (`flask billing rebuild-rollups` rebuilds `mrr_daily` only).

Revision ID: 0007_dashboard_rollups
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_dashboard_rollups"
down_revision = "0006_account_index"
branch_labels = None
depends_on = None

# A payment's movements (DESIGN §4.10): + ex-VAT on its day, − refunded on the refund day, − credited on the
# credit note's day (else the refund's, else the payment's). Only succeeded and refunded payments count.
MOVEMENTS = """
    SELECT p.currency, (p.date AT TIME ZONE 'UTC')::date AS day, p.amount_excluding_tax AS amount
    UNION ALL
    SELECT p.currency, (coalesce(p.refunded_at, p.date) AT TIME ZONE 'UTC')::date, -p.refunded_amount
    WHERE p.refunded_amount > 0
    UNION ALL
    SELECT p.currency, (coalesce(p.credit_noted_at, p.refunded_at, p.date) AT TIME ZONE 'UTC')::date,
           -p.credited_amount
    WHERE p.credited_amount > 0
"""

FUNCTIONS = f"""
CREATE FUNCTION revenue_daily_apply(p payment_transactions, sign integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p.status NOT IN ('succeeded', 'refunded') THEN
        RETURN;
    END IF;
    INSERT INTO revenue_daily (day, currency, amount)
    SELECT m.day, m.currency, sum(m.amount) * sign FROM ({MOVEMENTS}) AS m GROUP BY m.day, m.currency
    ON CONFLICT (day, currency) DO UPDATE SET amount = revenue_daily.amount + EXCLUDED.amount;
END $$;

CREATE FUNCTION revenue_daily_from_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.status, OLD.currency, OLD.date, OLD.amount_excluding_tax, OLD.refunded_amount,
            OLD.refunded_at, OLD.credited_amount, OLD.credit_noted_at)
        IS NOT DISTINCT FROM (NEW.status, NEW.currency, NEW.date, NEW.amount_excluding_tax, NEW.refunded_amount,
            NEW.refunded_at, NEW.credited_amount, NEW.credit_noted_at) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM revenue_daily_apply(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM revenue_daily_apply(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER payment_transactions_revenue_daily AFTER INSERT OR UPDATE OR DELETE ON payment_transactions
    FOR EACH ROW EXECUTE FUNCTION revenue_daily_from_payment();
"""

# Completed sign-ins per day: the dashboard's sign-ins chart reads days, not logins. Statement triggers move the
# counts for inserted, updated (a pending login completing) and deleted rows.
LOGIN_FUNCTIONS = """
CREATE FUNCTION login_daily_from_logins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO login_daily (day, succeeded)
        SELECT (o.created_at AT TIME ZONE 'UTC')::date, -count(*) FROM old_logins AS o
        WHERE o.outcome = 'succeeded' GROUP BY 1
        ON CONFLICT (day) DO UPDATE SET succeeded = login_daily.succeeded + EXCLUDED.succeeded;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO login_daily (day, succeeded)
        SELECT (n.created_at AT TIME ZONE 'UTC')::date, count(*) FROM new_logins AS n
        WHERE n.outcome = 'succeeded' GROUP BY 1
        ON CONFLICT (day) DO UPDATE SET succeeded = login_daily.succeeded + EXCLUDED.succeeded;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER logins_login_daily_insert AFTER INSERT ON logins
    REFERENCING NEW TABLE AS new_logins FOR EACH STATEMENT EXECUTE FUNCTION login_daily_from_logins();
CREATE TRIGGER logins_login_daily_update AFTER UPDATE ON logins
    REFERENCING OLD TABLE AS old_logins NEW TABLE AS new_logins FOR EACH STATEMENT
    EXECUTE FUNCTION login_daily_from_logins();
CREATE TRIGGER logins_login_daily_delete AFTER DELETE ON logins
    REFERENCING OLD TABLE AS old_logins FOR EACH STATEMENT EXECUTE FUNCTION login_daily_from_logins();
"""

BACKFILL = f"""
INSERT INTO revenue_daily (day, currency, amount)
SELECT m.day, m.currency, sum(m.amount)
FROM payment_transactions AS p CROSS JOIN LATERAL ({MOVEMENTS}) AS m
WHERE p.status IN ('succeeded', 'refunded')
GROUP BY m.day, m.currency
"""


def upgrade():
    op.create_table(
        "revenue_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(18, 2), server_default="0", nullable=False),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_revenue_daily_currency")),
        sa.PrimaryKeyConstraint("day", "currency", name=op.f("pk_revenue_daily")),
    )
    op.execute(BACKFILL)
    op.execute(FUNCTIONS)
    op.create_table(
        "login_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("succeeded", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_login_daily")),
    )
    op.execute("""
        INSERT INTO login_daily (day, succeeded)
        SELECT (created_at AT TIME ZONE 'UTC')::date, count(*) FROM logins WHERE outcome = 'succeeded' GROUP BY 1
    """)
    op.execute(LOGIN_FUNCTIONS)
    op.create_index("ix_logins_succeeded_created_at", "logins", ["created_at"],
                    postgresql_where=sa.text("outcome = 'succeeded'"))
    # The columns included: the count is then an index-only scan, however many sessions are active.
    op.create_index("ix_sessions_active_at", "sessions", [sa.text("coalesce(last_active_at, created_at)")],
                    postgresql_include=["last_active_at", "created_at"], postgresql_where=sa.text("revoked_at IS NULL"))


def downgrade():
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER logins_login_daily_{event} ON logins")
    op.execute("DROP FUNCTION login_daily_from_logins()")
    op.drop_table("login_daily")
    op.drop_index("ix_sessions_active_at", "sessions")
    op.drop_index("ix_logins_succeeded_created_at", "logins")
    op.execute("DROP TRIGGER payment_transactions_revenue_daily ON payment_transactions")
    op.execute("DROP FUNCTION revenue_daily_from_payment()")
    op.execute("DROP FUNCTION revenue_daily_apply(payment_transactions, integer)")
    op.drop_table("revenue_daily")
