"""The users surface's indexes: one per order of the users list, a name search, a person's sign-ins.

The users list reads the first rows of an index for each sort (both directions, the never-seen last either
way), and pages by keyset from there; last seen is keyed so that never seen is the earliest (descending) or the
latest (ascending) moment, which makes every activity filter a range the index seeks to; its search unions three trigram matches (email, the display name's key
— which covers first, last and "first last" — and the account's name). The display-name key replaces the
separate first- and last-name trigram indexes; an address (a search with an @) is looked up by its start. A person's logins are found by their email in any case,
newest first.

The expressions are written out here as the models write them (accounts.models.NAME_KEY_SQL): a migration
stays as it was written.

Revision ID: 0009_users_surface
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_users_surface"
down_revision = "0008_ledger_index"
branch_labels = None
depends_on = None

NAME_KEY = "lower(COALESCE(NULLIF(btrim((COALESCE(first_name, '') || ' ') || COALESCE(last_name, '')), ''), email))"
ROLE_RANK = "array_position(ARRAY['owner', 'admin', 'member'], role)"
# Last seen with the never-seen last: the earliest or the latest moment there is.
SEEN = "COALESCE((last_seen_at AT TIME ZONE 'UTC'), '{never} 00:00:00'::timestamp without time zone)"
ORDERS = (
    ("ix_users_list_name", [NAME_KEY, "lower(email)", "id"]),
    ("ix_users_list_email", ["lower(email)", "id"]),
    ("ix_users_list_role", [ROLE_RANK, NAME_KEY, "lower(email)", "id"]),
    ("ix_users_list_last_seen", [SEEN.format(never="9999-12-31"), "lower(email)", "id"]),
    ("ix_users_list_last_seen_desc", [SEEN.format(never="0001-01-01"), "lower(email)", "id"]),
    ("ix_users_list_created", ["created_at", "id"]),
)


def upgrade():
    for name, expressions in ORDERS:
        op.execute(f"CREATE INDEX {name} ON users ({', '.join(expressions)}) WHERE deleted_at IS NULL")
    op.execute(f"CREATE INDEX ix_users_name_key_trgm ON users USING gin (({NAME_KEY}) gin_trgm_ops)")
    op.execute("CREATE INDEX ix_users_email_lower_pattern ON users (lower(email) text_pattern_ops)")
    op.drop_index("ix_users_first_name_trgm", table_name="users")
    op.drop_index("ix_users_last_name_trgm", table_name="users")
    op.execute("CREATE INDEX ix_logins_email_lower_created_at ON logins (lower(email), created_at DESC, id DESC)")
    op.drop_index("ix_logins_email_created_at", table_name="logins")


def downgrade():
    op.create_index("ix_logins_email_created_at", "logins", ["email", sa.text("created_at DESC")])
    op.drop_index("ix_logins_email_lower_created_at", table_name="logins")
    for column in ("first_name", "last_name"):
        op.create_index(f"ix_users_{column}_trgm", "users", [column], postgresql_using="gin",
                        postgresql_ops={column: "gin_trgm_ops"})
    op.drop_index("ix_users_email_lower_pattern", table_name="users")
    op.drop_index("ix_users_name_key_trgm", table_name="users")
    for name, _ in reversed(ORDERS):
        op.drop_index(name, table_name="users")
