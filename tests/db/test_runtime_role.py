"""`flask db create-runtime-role NAME`: a login in the runtime group, made as the owner, safe to run again."""
from __future__ import annotations

import uuid

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from backoffice.database_roles import RUNTIME_GROUP, libpq_url, url_as
from tests import pg


@pytest.fixture
def role_name(pg_server):
    """A role name of this test's own, dropped afterwards (roles belong to the whole server)."""
    name = f"backoffice_cli_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def owner_app(make_app, pg_server, run_database):
    owner = pg.sqlalchemy_url(pg.with_database(pg_server, run_database))
    return make_app(MIGRATION_DATABASE_URI=owner)


def _role(pg_server: str, name: str):
    with psycopg.connect(pg_server) as conn:
        return conn.execute(
            "SELECT r.rolcanlogin, r.rolsuper, r.rolpassword IS NOT NULL, pg_has_role(r.rolname, %s, 'MEMBER')"
            " FROM pg_authid AS r WHERE r.rolname = %s", (RUNTIME_GROUP, name)).fetchone()


def test_the_command_makes_a_login_in_the_group_that_can_do_the_apps_work(owner_app, pg_server, run_database,
                                                                          role_name):
    result = owner_app.test_cli_runner().invoke(args=["db", "create-runtime-role", role_name, "--password-stdin"],
                                                input="s3cret\n")
    assert result.exit_code == 0, result.output
    assert f"Created login role {role_name} in {RUNTIME_GROUP}." in result.output
    assert f"DATABASE_URL=postgresql://{role_name}:" in result.output
    assert "s3cret" not in result.output
    assert _role(pg_server, role_name) == (True, False, True, True)

    login = url_as(pg.sqlalchemy_url(pg.with_database(pg_server, run_database)), role_name, "s3cret")
    with psycopg.connect(libpq_url(login)) as conn:
        conn.execute("INSERT INTO tenants (id, name, country, plan) VALUES ('ten_role', 'Role', 'DK', 'basis')")
        assert conn.execute("SELECT count(*) FROM tenants WHERE id = 'ten_role'").fetchone() == (1,)
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE billing_events DISABLE TRIGGER ALL")

    again = owner_app.test_cli_runner().invoke(args=["db", "create-runtime-role", role_name, "--no-password"])
    assert again.exit_code == 0, again.output
    assert f"Updated login role {role_name}" in again.output


def test_the_command_refuses_a_role_that_could_bypass_the_triggers(owner_app):
    result = owner_app.test_cli_runner().invoke(args=["db", "create-runtime-role", "postgres", "--no-password"])
    assert result.exit_code == 1
    assert "role postgres exists with super" in result.output


@pytest.mark.parametrize("name", ["Bad-Name", RUNTIME_GROUP, "pg_monitor", "x" * 64])
def test_the_command_refuses_an_unusable_name(owner_app, name):
    result = owner_app.test_cli_runner().invoke(args=["db", "create-runtime-role", name, "--no-password"])
    assert result.exit_code == 1
    assert "is not a usable role name" in result.output


def test_what_later_migrations_create_is_granted_by_default(owner_connection):
    """Migration 0016's default privileges: tables, sequences and functions a later revision makes need no grant."""
    kinds = set(owner_connection.scalars(sa.text(
        "SELECT defaclobjtype::text FROM pg_default_acl AS d JOIN pg_namespace AS n ON n.oid = d.defaclnamespace"
        " WHERE n.nspname = 'public' AND EXISTS (SELECT 1 FROM aclexplode(d.defaclacl) AS a"
        " WHERE a.grantee = CAST(:group AS regrole))"), {"group": RUNTIME_GROUP}))
    assert kinds == {"r", "S", "f"}
    owner_connection.execute(sa.text("CREATE TABLE later_table (id bigserial PRIMARY KEY)"))
    granted = owner_connection.execute(sa.text(
        "SELECT has_table_privilege(:group, 'later_table', 'INSERT, UPDATE, DELETE, SELECT'),"
        " has_table_privilege(:group, 'later_table', 'TRUNCATE'),"
        " has_sequence_privilege(:group, 'later_table_id_seq', 'USAGE')"), {"group": RUNTIME_GROUP}).one()
    assert tuple(granted) == (True, False, True)
