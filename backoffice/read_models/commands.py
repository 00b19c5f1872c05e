"""`flask db check-read-models` and `flask db rebuild-read-models`: every read model against its recomputation.

They join Flask-Migrate's `db` group: they are about the database's derived tables, beside `flask db check`.
"""
from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from backoffice.extensions import db
from backoffice.read_models import NAMES, repair, select_models

ONLY = click.option("--only", "names", multiple=True, type=click.Choice(NAMES),
                    help="A read model to work on (repeatable); all of them by default.")


@click.command("check-read-models")
@ONLY
@with_appcontext
def check_read_models(names: tuple[str, ...]) -> None:
    """List every row of a read model that differs from its recomputation; exit 1 if any does."""
    currency = current_app.config["PLATFORM_CURRENCY"]
    total = 0
    for model in select_models(names):
        found = repair.differences(db.session, model, currency)
        click.echo(f"{model.name}: {len(found)} row(s) differ")
        for difference in found:
            click.echo(f"  {difference}")
        total += len(found)
    click.echo(f"{total} row(s) differ from their recomputation" if total else "every read model is clean")
    if total:
        raise SystemExit(1)


@click.command("rebuild-read-models")
@ONLY
@with_appcontext
def rebuild_read_models(names: tuple[str, ...]) -> None:
    """Rewrite the rows of each read model that differ from its recomputation, one transaction per model."""
    currency = current_app.config["PLATFORM_CURRENCY"]
    for model in select_models(names):
        changed = repair.rebuild(db.session, model, currency)
        db.session.commit()
        click.echo(f"{model.name}: {len(changed)} row(s) changed")


def init_app(app: Flask) -> None:
    """Add the commands to Flask-Migrate's `db` group (registered on the app by `migrate.init_app`)."""
    group = app.cli.commands["db"]
    group.add_command(check_read_models)
    group.add_command(rebuild_read_models)
