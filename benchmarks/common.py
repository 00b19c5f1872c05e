"""What the benchmarks share: a scratch database beside the configured one."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

from backoffice.dev import create_app


def owner_uri() -> str:
    """The configured server as the owner (MIGRATION_DATABASE_URL, or the embedded server's superuser): a
    benchmark creates and drops databases, which the app's runtime role may not."""
    config = create_app({"LOG_LEVEL": "WARNING"}).config
    return config["MIGRATION_DATABASE_URI"] or config["SQLALCHEMY_DATABASE_URI"]


def as_runtime_role(uri: str) -> str:
    """Return `uri` (a scratch database) as the configured app's own login: the runtime role, which owns nothing
    (migration 0016 grants it each migrated database), or the owner where none is configured."""
    from backoffice.database_roles import url_as

    runtime = make_url(create_app({"LOG_LEVEL": "WARNING"}).config["SQLALCHEMY_DATABASE_URI"])
    return url_as(uri, runtime.username or "", runtime.password)


@contextmanager
def scratch_database() -> Iterator[str]:
    """Yield the URL of a new, empty database on the configured (or embedded) server; drop it afterwards."""
    url = make_url(owner_uri())
    name = f"backoffice_bench_{os.getpid()}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def kept_database(name: str) -> Iterator[str]:
    """Yield the URL of database `name` on the configured server, created if missing and kept afterwards
    (so that a benchmark can be re-run on the data it loaded before)."""
    url = make_url(owner_uri())
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
