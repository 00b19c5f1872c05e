"""`flask billing prove`: the proof at scale of issue 16, on an empty database (see `demo/prove.py`)."""
from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("prove")
@click.option("--lifecycles", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--months", default=12, show_default=True, type=click.IntRange(1, 36),
              help="How much Stripe history the lifecycles span (ending now).")
@with_appcontext
def prove_command(lifecycles: int, seed: int, months: int) -> None:
    """Play LIFECYCLES random Stripe lifecycles in a sandbox, deliver them through the webhook with 20 %
    duplicated, 10 % out of order and 5 % dropped, reconcile, and check the books against Stripe.

    Needs an empty database. Exits 1 when any check fails."""
    # The SDK logs every request at INFO; thousands of them would bury the progress.
    from backoffice.demo.prove import ProveRefused, prove

    logging.getLogger("stripe").setLevel(logging.WARNING)
    click.echo(f"Proving {lifecycles} lifecycles (seed {seed}, {months} months) …")
    try:
        report = prove(current_app._get_current_object(), lifecycles, seed, months, echo=click.echo)
    except ProveRefused as refused:
        raise click.ClickException(str(refused)) from refused
    for line in report.figures():
        click.echo(line)
    for check in report.checks:
        for line in check.lines():
            click.echo(line)
    failed = sum(not check.passed for check in report.checks)
    click.echo(f"{len(report.checks) - failed} passed, {failed} failed")
    if failed:
        raise SystemExit(1)
