"""Find a coupon's archived events by the coupon's id without reading the whole archive.

Coupons belong to no customer; the replay looks one up whenever a basil-era discount names its coupon by id.

Revision ID: 0004_coupon_lookup
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_coupon_lookup"
down_revision = "0003_linked_event_indexes"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("stripe_events", sa.Column(
        "object_id", sa.Text(), sa.Computed("(payload -> 'data' -> 'object') ->> 'id'", persisted=True), nullable=True))
    op.create_index("ix_stripe_events_coupon_object_id", "stripe_events", ["object_id"],
                    postgresql_where=sa.text("type LIKE 'coupon.%'"))


def downgrade():
    op.drop_index("ix_stripe_events_coupon_object_id", table_name="stripe_events")
    op.drop_column("stripe_events", "object_id")
