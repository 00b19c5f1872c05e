"""The development entry point: `flask --app backoffice.dev …`, which `make demo` runs.

Where the environment leaves them unset, it starts (or joins) an embedded PostgreSQL under instance/ (the app
connects as its runtime role, the migrations as the owner) and keeps a secret key in instance/secret_key, then
builds the app as production does. Production's entry points (wsgi.py, worker.py) do neither: without
DATABASE_URL or SECRET_KEY they stop with one line saying so.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from backoffice import PROJECT_ROOT
from backoffice.config import create_app_or_exit, environment_sets
from backoffice.embedded_db import embedded_database_url, embedded_runtime_url

# The instance folder create_app gives the app, so the demo's database, key and files sit together.
INSTANCE_PATH = PROJECT_ROOT / "instance"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app for development, filling in the database and the secret key the environment leaves unset."""
    return create_app_or_exit(development_config(config, os.environ, INSTANCE_PATH))


def development_config(config: Mapping[str, Any] | None, environ: Mapping[str, str],
                       instance_path: Path) -> dict[str, Any]:
    """Return `config` with a database URL and a secret key wherever neither it nor the environment gives one."""
    filled = dict(config or {})
    if not filled.get("SQLALCHEMY_DATABASE_URI") and not environment_sets(environ, "DATABASE_URL"):
        owner = embedded_database_url(str(instance_path))
        filled["SQLALCHEMY_DATABASE_URI"] = embedded_runtime_url(owner)
        if not filled.get("MIGRATION_DATABASE_URI") and not environment_sets(environ, "MIGRATION_DATABASE_URL"):
            filled["MIGRATION_DATABASE_URI"] = owner
    if not filled.get("SECRET_KEY") and not environment_sets(environ, "SECRET_KEY"):
        filled["SECRET_KEY"] = instance_secret_key(instance_path)
    if "SESSION_COOKIE_SECURE" not in filled and not environment_sets(environ, "SESSION_COOKIE_SECURE"):
        # `flask run` and `make demo` serve plain http on loopback, where a Secure cookie would never come back.
        filled["SESSION_COOKIE_SECURE"] = False
    return filled


def instance_secret_key(instance_path: Path) -> str:
    """Return the key kept in the instance folder, made on first use, so sessions outlive a restart."""
    path = instance_path / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Created owner-only from the first byte, and never overwritten by a second process starting alongside.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
    return path.read_text().strip()
