"""The runtime role: the app (web, worker, scheduler) connects as a member of `backoffice_runtime`, which owns
nothing, so it cannot bypass the append-only triggers of the ledger, the archive and the audit log (no
`ALTER TABLE … DISABLE TRIGGER`, no `DROP TRIGGER`, no `SET session_replication_role`: those need the owner or
a superuser). Migrations keep running as the owner (MIGRATION_DATABASE_URL).

The group is NOLOGIN and made here when it is missing, which a managed PostgreSQL allows an owner with
CREATEROLE; `flask db create-runtime-role NAME` then makes a login role in it. Roles belong to the whole server,
so the downgrade takes back this database's grants and leaves the group for the other databases that use it.

Default privileges make the tables, sequences and functions later migrations create (as the same owner) usable
by the group without a grant in each. TRUNCATE is granted nowhere: the app never truncates, and the ledger's
TRUNCATE trigger is then a second wall rather than the only one. alembic_version is the owner's to write.

Revision ID: 0016_runtime_role
"""

from alembic import op

revision = "0016_runtime_role"
down_revision = "0015_net_revenue_once"
branch_labels = None
depends_on = None

ROLE = "backoffice_runtime"

# Two migrations racing on one server (two databases migrated at once) both see the role missing; one CREATE
# loses with duplicate_object, or unique_violation on the catalog, and that is as good as having made it.
CREATE_GROUP = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
        CREATE ROLE {ROLE} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;
"""

CONNECT = f"""
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO {ROLE}', current_database());
END $$;
"""

GRANTS = (
    f"GRANT USAGE ON SCHEMA public TO {ROLE}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}",
    # Absent when the revisions run outside Alembic's command (the schema test's round trip).
    f"""
    DO $$
    BEGIN
        IF to_regclass('alembic_version') IS NOT NULL THEN
            REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {ROLE};
        END IF;
    END $$;
    """,
    f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {ROLE}",
    f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {ROLE}",
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE}",
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {ROLE}",
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO {ROLE}",
)

REVOKES = (
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM {ROLE}",
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT, UPDATE ON SEQUENCES FROM {ROLE}",
    f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {ROLE}",
    f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {ROLE}",
    f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE}",
    f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE}",
    f"REVOKE ALL ON SCHEMA public FROM {ROLE}",
)

DISCONNECT = f"""
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM {ROLE}', current_database());
END $$;
"""


def upgrade() -> None:
    op.execute(CREATE_GROUP)
    op.execute(CONNECT)
    for statement in GRANTS:
        op.execute(statement)


def downgrade() -> None:
    for statement in REVOKES:
        op.execute(statement)
    op.execute(DISCONNECT)
