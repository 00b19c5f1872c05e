"""`account_months_of` finds its subscriptions' ledger rows by index again, instead of reading the whole ledger.

Its predicate was `(subscriptions IS NULL OR v.subscription_id = ANY (subscriptions))`, NULL meaning every
subscription. The statement triggers call it through `account_months_refresh`, a SQL function, and PostgreSQL
plans a SQL function's body without its arguments' values: it cannot rule the NULL arm out, so no index serves
the OR and every refresh scanned all of billing_events (3.7 ms at 15,000 rows, and growing with the ledger, for
each batch a replay or a webhook's replay writes). The predicate is now the array alone; the read model's full
recompute passes every subscription's id (backoffice/read_models/account_months.py).

Only that line of the function changes, so it is edited in the stored definition rather than copied here whole.

Revision ID: 0026_account_months_by_index
"""

from alembic import op
from sqlalchemy import text

revision = "0026_account_months_by_index"
down_revision = "0025_states_opened_by_archive"
branch_labels = None
depends_on = None

EITHER = "(subscriptions IS NULL OR v.subscription_id = ANY (subscriptions))"
ARRAY_ALONE = "v.subscription_id = ANY (subscriptions)"


def _replace(old: str, new: str) -> None:
    connection = op.get_bind()
    definition = connection.scalar(text("SELECT pg_get_functiondef('account_months_of(text[])'::regprocedure)"))
    if definition.count(old) != 1:
        raise RuntimeError(f"account_months_of() does not read as migration 0018 left it: {old!r} not found once")
    connection.exec_driver_sql(definition.replace(old, new))  # as stored: no bind parameters read into it


def upgrade():
    _replace(f"WHERE {EITHER}", f"WHERE {ARRAY_ALONE}")


def downgrade():
    _replace(f"WHERE {ARRAY_ALONE}", f"WHERE {EITHER}")
