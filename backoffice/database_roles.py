"""The runtime database role: the app's login, a member of the `backoffice_runtime` group that owns nothing.

Migration 0016 grants the group what the app does (DML where it needs it, sequences, the SQL functions) and
nothing an owner or superuser alone can do, so the append-only triggers hold against the app itself.
`flask db create-runtime-role NAME` makes a login role in the group, as the owner (MIGRATION_DATABASE_URL);
`make demo`'s embedded server and the test suite make theirs with the same function.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

import click
import psycopg
from flask import Flask, current_app
from flask.cli import with_appcontext
from psycopg import sql
from sqlalchemy.engine import make_url

RUNTIME_GROUP = "backoffice_runtime"
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Attributes that would let the login step around the grants (and so around the triggers).
POWERS = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")


class RuntimeRoleError(ValueError):
    """The role cannot serve as the app's login; the message says why."""


def create_runtime_role(connection: psycopg.Connection, name: str, password: str | None = None) -> bool:
    """Make `name` a login role in the runtime group (creating either when missing); return whether it is new.

    An existing role is brought in line (LOGIN, INHERIT, in the group, the password if one is given) unless it
    holds a power or owns something in this database: such a role could bypass the triggers, so it is refused.
    """
    if not ROLE_NAME.match(name) or name == RUNTIME_GROUP or name.startswith("pg_"):
        raise RuntimeRoleError(f"{name!r} is not a usable role name: lower-case letters, digits and _, "
                               f"at most 63, not {RUNTIME_GROUP} itself nor pg_…")
    role = sql.Identifier(name)
    with connection.transaction():
        _create_missing(connection, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(RUNTIME_GROUP)),
                        RUNTIME_GROUP)
        created = _create_missing(connection, sql.SQL("CREATE ROLE {} LOGIN").format(role), name)
        if not created:
            _refuse_a_powerful_role(connection, name)
        connection.execute(sql.SQL("ALTER ROLE {} LOGIN INHERIT").format(role))
        connection.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(RUNTIME_GROUP), role))
        if password is not None:
            # A utility statement takes no bound parameters; the literal is quoted by psycopg.
            connection.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)))
    return created


def _create_missing(connection: psycopg.Connection, statement: sql.Composed, name: str) -> bool:
    if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
        return False
    try:
        with connection.transaction():
            connection.execute(statement)
    except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        return False  # made meanwhile by another process on the same server: roles are server-wide
    return True


def _refuse_a_powerful_role(connection: psycopg.Connection, name: str) -> None:
    row = connection.execute(f"SELECT {', '.join(POWERS)} FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    powers = [power.removeprefix("rol") for power, held in zip(POWERS, row or (), strict=False) if held]
    if powers:
        raise RuntimeRoleError(f"role {name} exists with {', '.join(powers)}: the app's role must hold none")
    owned = connection.execute(
        "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)"
        " UNION ALL SELECT count(*) FROM pg_proc WHERE proowner = (SELECT oid FROM pg_roles WHERE rolname = %s)",
        (name, name)).fetchall()
    if sum(count for (count,) in owned):
        raise RuntimeRoleError(f"role {name} owns tables or functions in this database: the app's role must "
                               f"own nothing (it could drop their triggers); pick another name")


def libpq_url(uri: str) -> str:
    """Return the plain libpq form (for psycopg) of the app's SQLAlchemy PostgreSQL URL."""
    return make_url(uri).set(drivername="postgresql").render_as_string(hide_password=False)


def url_as(uri: str, name: str, password: str | None = None) -> str:
    """Return `uri` (SQLAlchemy form) with role `name` (and its password) in place of the owner's."""
    return make_url(uri).set(username=name, password=password).render_as_string(hide_password=False)


def migration_uri(settings: Mapping[str, Any]) -> str:
    """Return the owner's URL the migrations run with: MIGRATION_DATABASE_URL, else DATABASE_URL (warned)."""
    owner = settings.get("MIGRATION_DATABASE_URI")
    if owner:
        return owner
    print("backoffice: MIGRATION_DATABASE_URL is not set: using DATABASE_URL, whose role must then own the "
          "schema (the app should not run as it)", file=sys.stderr)
    return settings["SQLALCHEMY_DATABASE_URI"]


@click.command("create-runtime-role")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--no-password", is_flag=True,
              help="Set no password (peer, certificate or trust authentication, IAM tokens).")
@with_appcontext
def create_runtime_role_command(name: str, password_stdin: bool, no_password: bool) -> None:
    """Create login role NAME in the backoffice_runtime group, as the owner, for DATABASE_URL.

    Run `flask db upgrade` first (migration 0016 grants the group its privileges); it needs MIGRATION_DATABASE_URL
    (a role with CREATEROLE, as a managed PostgreSQL's owner has). Running it again is safe.
    """
    if password_stdin and no_password:
        raise click.UsageError("--password-stdin and --no-password exclude each other")
    if no_password:
        password = None
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    owner = migration_uri(current_app.config)
    try:
        with psycopg.connect(libpq_url(owner), autocommit=True) as connection:
            created = create_runtime_role(connection, name, password)
    except RuntimeRoleError as error:
        raise click.ClickException(str(error)) from error
    except psycopg.Error as error:
        raise click.ClickException(f"PostgreSQL refused: {str(error).strip()}") from error
    click.echo(f"{'Created' if created else 'Updated'} login role {name} in {RUNTIME_GROUP}.")
    shown = make_url(url_as(owner, name, "…" if password else None)).set(drivername="postgresql")
    click.echo(f"Run the app (web, worker, scheduler) with DATABASE_URL={shown.render_as_string(hide_password=False)}")


def init_app(app: Flask) -> None:
    """Add the command to Flask-Migrate's `db` group (registered on the app by `migrate.init_app`)."""
    app.cli.commands["db"].add_command(create_runtime_role_command)
