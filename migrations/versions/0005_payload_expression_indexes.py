"""Index the payload's charge, invoice and object id by expression instead of storing them in generated columns.

PostgreSQL recomputes every stored generated column on every UPDATE, whichever columns it sets, so each status
move of an archived event detoasted its payload three times: half the cost of marking a replay's events
processed. An expression index is evaluated only for the rows its predicate admits (events naming no customer,
coupons), and its lookups read the same values.

Revision ID: 0005_payload_expression_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_payload_expression_indexes"
down_revision = "0004_coupon_lookup"
branch_labels = None
depends_on = None

# (generated column, payload field, index, its predicate), as 0003 and 0004 made them.
INDEXED = (
    ("object_charge", "charge", "ix_stripe_events_no_customer_charge", "stripe_customer_id IS NULL"),
    ("object_invoice", "invoice", "ix_stripe_events_no_customer_invoice", "stripe_customer_id IS NULL"),
    ("object_id", "id", "ix_stripe_events_coupon_object_id", "type LIKE 'coupon.%'"),
)


def _field(name: str) -> str:
    return f"(((payload -> 'data') -> 'object') ->> '{name}')"


def upgrade():
    for column, name, index, predicate in INDEXED:
        op.drop_index(index, table_name="stripe_events")
        op.drop_column("stripe_events", column)
        op.create_index(index, "stripe_events", [sa.text(_field(name))], postgresql_where=sa.text(predicate))


def downgrade():
    for column, name, index, predicate in INDEXED:
        op.drop_index(index, table_name="stripe_events")
        op.add_column("stripe_events", sa.Column(
            column, sa.Text(), sa.Computed(f"(payload -> 'data' -> 'object') ->> '{name}'", persisted=True),
            nullable=True))
        op.create_index(index, "stripe_events", [column], postgresql_where=sa.text(predicate))
