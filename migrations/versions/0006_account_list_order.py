"""The accounts list's default order (name, then id) read from an index instead of sorting every tenant.

Revision ID: 0005_account_list_order
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_account_list_order"
down_revision = "0004_coupon_lookup"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_tenants_lower_name_id_not_deleted", "tenants", [sa.text("lower(name)"), "id"],
                    postgresql_where=sa.text("deleted_at IS NULL"))


def downgrade():
    op.drop_index("ix_tenants_lower_name_id_not_deleted", table_name="tenants")
