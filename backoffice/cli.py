"""flask commands. Later features add their groups (billing, demo, sandbox) here."""
from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from backoffice.extensions import db
from backoffice.readiness import check_database, check_redis


@click.command("ready")
@with_appcontext
def ready_command() -> None:
    """Print the readiness checks and fail when Backoffice is not ready."""
    checks = check_database(db.session, current_app.extensions["migrate"].directory)
    checks["redis"] = check_redis(current_app.config["REDIS_URL"])
    for name, state in checks.items():
        click.echo(f"{name}: {state}")
    if checks["database"] != "ok" or checks["migrations"] != "at head":
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(ready_command)
