"""`flask demo …`: load the demo dataset into the sandbox (Stripe) and the product-side tables."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from backoffice.accounts.models import Tenant
from backoffice.blobs import BlobStore
from backoffice.demo.generator import MONTH, DatasetBuilder, plan_tenants
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.demo.writer import write_records
from backoffice.extensions import db

# The standard VAT rates of the demo's customer countries (percent), as of 2026.
DEMO_VAT_RATES = "DK=25,SE=25,NO=25,FI=25.5,DE=19,NL=21,FR=20,GB=20"


@click.group("demo")
def demo_group() -> None:
    """Demo data: Stripe lifecycles in the sandbox and the SaaS's own records."""


@contextmanager
def stripe_endpoint(months: int, state: str | None, vat: dict[str, Decimal]) -> Iterator[tuple[str, str]]:
    """Yield the Stripe API base and key: the configured sandbox, or one started here for this command."""
    config = current_app.config
    if config["STRIPE_API_BASE"]:
        yield config["STRIPE_API_BASE"], config["STRIPE_SECRET_KEY"]
        return
    from backoffice.stripe_sandbox import Sandbox, SandboxSettings
    from backoffice.stripe_sandbox.server import SandboxServer

    if state and Path(state).exists():
        raise click.ClickException(f"{state} already holds a sandbox; demo data loads into a new one")
    settings = SandboxSettings(currency=config["PLATFORM_CURRENCY"], tax_rates=vat, state_path=state,
                               start_time=int(time.time()) - months * MONTH)
    server = SandboxServer(Sandbox(settings)).start()
    kept = f"kept in {state}" if state else "gone when this command ends"
    click.echo(f"No STRIPE_API_BASE: using a sandbox in this process at {server.url} ({kept})")
    try:
        yield server.url, settings.secret_key
    finally:
        server.stop()


@demo_group.command("load")
@click.option("--tenants", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--months", default=14, show_default=True, type=click.IntRange(1, 60))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--sandbox-state", type=click.Path(dir_okay=False), default=None,
              help="Without STRIPE_API_BASE: keep the sandbox this command starts in FILE, for `flask sandbox serve`.")
@click.option("--vat", envvar="SANDBOX_VAT_RATES", default=DEMO_VAT_RATES, show_default=True,
              help="Without STRIPE_API_BASE: VAT per customer country for the sandbox started here.")
@click.option("--webhook-url", default=None,
              help="Deliver the events to this loopback webhook as they happen (missed-webhook accounts excepted).")
@with_appcontext
def load_command(tenants: int, months: int, seed: int, sandbox_state: str | None, vat: str,
                 webhook_url: str | None) -> None:
    """Create TENANTS accounts over MONTHS months of history, deterministically from SEED."""
    from backoffice.cli import parse_vat_rates

    if db.session.scalar(select(func.count()).select_from(Tenant)):
        raise click.ClickException("the database already holds tenants; demo data loads into an empty one")
    with stripe_endpoint(months, sandbox_state, parse_vat_rates(vat)) as (api_base, secret_key):
        demo = StripeDemo.connect(api_base, secret_key, current_app.config["PLATFORM_CURRENCY"])
        start = demo.now()
        if start > time.time() - months * MONTH + 86400:
            click.echo("note: the sandbox clock is later than the start of the requested history; "
                       "the dataset's last months will lie in the future", err=True)
        plans = plan_tenants(seed, tenants, months, start)
        endpoint = None
        if webhook_url:
            endpoint, secret = demo.listen(webhook_url)
            click.echo(f"Webhook endpoint {endpoint} → {webhook_url}; its signing secret: {secret}")
        builder = DatasetBuilder(demo, plans, start, seed, webhook_endpoint=endpoint)
        total = sum(len(plan.actions) for plan in plans)
        with click.progressbar(length=total, label="Stripe lifecycles") as bar:
            report = builder.run(progress=lambda done, _total: bar.update(done - bar.pos))
        demo.advance_to(start + months * MONTH)
    counts = write_records(db.session, [plan.records for plan in plans], BlobStore(current_app.config["BLOB_DIR"]))
    db.session.commit()
    click.echo(", ".join(f"{count} {name}" for name, count in counts.items())
               + f"; {len(report.customers)} Stripe customers ({len(report.lost_webhooks)} with missed webhooks), "
               f"{report.skipped} actions refused by Stripe")
