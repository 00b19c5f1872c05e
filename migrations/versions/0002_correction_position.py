"""Corrections restate a row's position: a late event can move a row within its second (DESIGN §4.4, §4.6).

Revision ID: 0002_correction_position
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_correction_position"
down_revision = "0001_initial_schema"
branch_labels = None
depends_on = None

VIEW = """
CREATE OR REPLACE VIEW effective_billing_events AS
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
            CASE WHEN c.id IS NULL OR c.position IS NULL THEN e.position ELSE c.position END AS position,
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


def upgrade():
    op.add_column("billing_event_corrections", sa.Column("position", sa.Integer(), nullable=True))
    op.execute(VIEW)


def downgrade():
    op.execute("DROP VIEW effective_billing_events")
    op.drop_column("billing_event_corrections", "position")
    op.execute(VIEW.replace(
        "CASE WHEN c.id IS NULL OR c.position IS NULL THEN e.position ELSE c.position END AS position",
        "e.position"))
