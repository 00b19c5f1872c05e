"""The billing events list's read model: one narrow row per ledger row with its effective values, by triggers.

The list orders millions of ledger rows newest first and filters them by type, movement and period. Read
through `effective_billing_events` (a lateral join per row onto the wide ledger table) a page 1,000 deep costs
hundreds of milliseconds. `ledger_index` holds what the list finds and orders rows by — when, the rank within
the second, the account, and the effective type and movement — covered by an index that excludes NoOp, so
pages and capped counts are index-only scans; the page's rows are then read by id. Statement triggers keep it:
one on billing_events (appends), one on billing_event_corrections (a correction re-reads its rows from the view).

Revision ID: 0008_billing_lists
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_ledger_index"
down_revision = "0007_dashboard_rollups"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION ledger_index_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_index (billing_event_id, tenant_id, occurred_at, position, event_type, movement)
    SELECT a.id, a.tenant_id, a.occurred_at, a.position, a.event_type, a.movement FROM appended AS a;
    RETURN NULL;
END $$;

CREATE FUNCTION ledger_index_from_correction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_index AS li
    SET position = v.position, event_type = v.event_type, movement = v.movement
    FROM effective_billing_events AS v
    WHERE v.id = li.billing_event_id AND v.id IN (SELECT c.billing_event_id FROM corrected AS c);
    RETURN NULL;
END $$;

CREATE TRIGGER billing_events_ledger_index AFTER INSERT ON billing_events
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION ledger_index_from_ledger();
CREATE TRIGGER billing_event_corrections_ledger_index AFTER INSERT ON billing_event_corrections
    REFERENCING NEW TABLE AS corrected FOR EACH STATEMENT EXECUTE FUNCTION ledger_index_from_correction();
"""


NEWEST = [sa.text("occurred_at DESC"), sa.text("position DESC"), sa.text("billing_event_id DESC")]
# The lens and movement indexes as this migration created them, written out: a migration creates what it says,
# whatever the live code's lenses (billing/lists/lenses.py) later become; the schema test holds the two equal.
LENS_INDEXES = {
    "ix_ledger_index_lens_mrr": (
        "event_type IN ('LedgerBaseline', 'SubscriptionCancelled', 'SubscriptionCreated',"
        " 'SubscriptionDowngradeCancelled', 'SubscriptionDowngradeScheduled',"
        " 'SubscriptionDowngraded', 'SubscriptionExpired', 'SubscriptionImmediatelyCancelled',"
        " 'SubscriptionReactivated', 'SubscriptionSuspended', 'SubscriptionUpgraded')"
    ),
    "ix_ledger_index_lens_state": (
        "event_type IN ('SubscriptionCreated', 'SubscriptionDowngraded', 'SubscriptionExpired',"
        " 'SubscriptionImmediatelyCancelled', 'SubscriptionSuspended', 'SubscriptionUpgraded')"
    ),
    "ix_ledger_index_lens_other": (
        "event_type IN ('BillingInfoAdded', 'BillingInfoUpdated', 'NoOp', 'PaymentFailed',"
        " 'PaymentMethodUpdated', 'PaymentRecovered', 'PaymentRefunded', 'SubscriptionPastDue',"
        " 'SubscriptionRenewed', 'Unclassified')"
    ),
    "ix_ledger_index_movement": (
        "movement IS NOT NULL AND event_type <> 'NoOp'"
    ),
}


def upgrade():
    op.create_table(
        "ledger_index",
        sa.Column("billing_event_id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("movement", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["billing_event_id"], ["billing_events.id"],
                                name=op.f("fk_ledger_index_billing_event_id_billing_events")),
        sa.PrimaryKeyConstraint("billing_event_id", name=op.f("pk_ledger_index")),
    )
    op.execute("""
        INSERT INTO ledger_index (billing_event_id, tenant_id, occurred_at, position, event_type, movement)
        SELECT id, tenant_id, occurred_at, position, event_type, movement FROM effective_billing_events
    """)
    op.create_index("ix_ledger_index_newest", "ledger_index", NEWEST,
                    postgresql_include=["tenant_id", "event_type", "movement"],
                    postgresql_where=sa.text("event_type <> 'NoOp'"))
    op.create_index("ix_ledger_index_tenant_newest", "ledger_index",
                    ["tenant_id", sa.text("occurred_at DESC"), sa.text("position DESC"),
                     sa.text("billing_event_id DESC")],
                    postgresql_include=["event_type", "movement"], postgresql_where=sa.text("event_type <> 'NoOp'"))
    # Each lens and the movement filter read an index of their own rows only, however rare the rows are.
    for name, where in LENS_INDEXES.items():
        op.create_index(name, "ledger_index", NEWEST, postgresql_include=["tenant_id", "event_type", "movement"],
                        postgresql_where=sa.text(where))
    op.execute(FUNCTIONS)


def downgrade():
    for name in LENS_INDEXES:
        op.drop_index(name, "ledger_index")
    op.execute("DROP TRIGGER billing_event_corrections_ledger_index ON billing_event_corrections")
    op.execute("DROP TRIGGER billing_events_ledger_index ON billing_events")
    op.execute("DROP FUNCTION ledger_index_from_correction()")
    op.execute("DROP FUNCTION ledger_index_from_ledger()")
    op.drop_table("ledger_index")
