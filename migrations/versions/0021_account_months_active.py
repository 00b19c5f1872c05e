"""Find the account_months rows live at the end of a month by a GiST index on their months [month, next_month), so
that the SaaS metrics' "MRR at a month's end" costs the accounts live then, not the history before
(backoffice/read/saas_metrics.py, _active_at).

Revision ID: 0021_account_months_active
"""

from alembic import op

revision = "0021_account_months_active"
down_revision = "0020_list_currencies"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE INDEX ix_account_months_active ON account_months USING gist (daterange(month, next_month))")


def downgrade():
    op.execute("DROP INDEX ix_account_months_active")
