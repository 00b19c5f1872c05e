"""`flask demo …`: load the demo dataset into the sandbox (Stripe) and the product-side tables."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from backoffice.accounts.models import Tenant
from backoffice.billing.models import StripeEvent, Subscription
from backoffice.billing.replay.tasks import replay_all
from backoffice.blobs import BlobStore
from backoffice.demo.delivery import local_webhook, wait_until_archived
from backoffice.demo.generator import MONTH, DatasetBuilder, plan_tenants
from backoffice.demo.progress import phase
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.demo.vat import parse_vat_rates
from backoffice.demo.writer import write_records
from backoffice.extensions import db
from backoffice.fx import rates as fx_rates
from backoffice.jobs import in_process_runner

# The standard VAT rates of the demo's customer countries (percent), as of 2026.
DEMO_VAT_RATES = "DK=25,SE=25,NO=25,FI=25.5,DE=19,NL=21,FR=20,GB=20"


@click.group("demo")
def demo_group() -> None:
    """Demo data: Stripe lifecycles in the sandbox and the SaaS's own records."""


@contextmanager
def stripe_endpoint(months: int, state: str | None, vat: dict[str, Decimal]) -> Iterator[tuple[str, str, Any]]:
    """Yield the Stripe API base and key, and the sandbox when it runs in this process (else None)."""
    config = current_app.config
    if config["STRIPE_API_BASE"]:
        yield config["STRIPE_API_BASE"], config["STRIPE_SECRET_KEY"], None
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
        yield server.url, settings.secret_key, server.sandbox
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
              help="Deliver the events to this loopback webhook instead of Backoffice's own (served here meanwhile).")
@click.option("--webhook-secret-file", type=click.Path(dir_okay=False), default=None,
              help="Keep the endpoint afterwards, pointed at --serve-url, and write its signing secret to FILE.")
@click.option("--serve-url", default="http://127.0.0.1:5000/webhooks/stripe", show_default=True,
              help="Where the kept endpoint delivers once the app is served.")
@with_appcontext
def load_command(tenants: int, months: int, seed: int, sandbox_state: str | None, vat: str,
                 webhook_url: str | None, webhook_secret_file: str | None, serve_url: str) -> None:
    """Create TENANTS accounts over MONTHS months of history, deterministically from SEED.

    Every Stripe event goes through a webhook as it happens (Backoffice's own unless --webhook-url), except
    those of the accounts chosen to miss theirs; the archive is then replayed into the ledger.
    """
    if db.session.scalar(select(func.count()).select_from(Tenant)):
        raise click.ClickException("the database already holds tenants; demo data loads into an empty one")
    # The ECB's rates the reports convert the customers' other currencies with (as `flask fx refresh` loads them).
    loaded = fx_rates.refresh(db.session, fx_rates.parse(fx_rates.bundled_lines()))
    click.echo(f"Exchange rates: {loaded.rates} ECB rates of {loaded.currencies} currencies, to {loaded.last}")
    db.session.commit()  # no transaction left open while the webhook archives events meanwhile
    app = current_app._get_current_object()
    saved = {key: app.config[key] for key in ("IN_PROCESS_JOBS", "STRIPE_WEBHOOK_SECRETS", "STRIPE_API_BASE",
                                              "STRIPE_SECRET_KEY")}
    try:
        # Replays run once, at the end, one pass per customer, rather than on threads during the build.
        app.config["IN_PROCESS_JOBS"] = "deferred"
        with stripe_endpoint(months, sandbox_state, parse_vat_rates(vat)) as (api_base, secret_key, sandbox), \
                (nullcontext(webhook_url) if webhook_url else local_webhook(app)) as target:
            # The replay asks Stripe for what the archive lacks (prices, coupons), as the worker does.
            app.config.update(STRIPE_API_BASE=api_base, STRIPE_SECRET_KEY=secret_key)
            demo = StripeDemo.connect(api_base, secret_key, app.config["PLATFORM_CURRENCY"])
            start = demo.now()
            if start > time.time() - months * MONTH + 86400:
                click.echo("note: the sandbox clock is later than the start of the requested history; "
                           "the dataset's last months will lie in the future", err=True)
            plans = plan_tenants(seed, tenants, months, start)
            endpoint, secret = demo.listen(target)
            app.config["STRIPE_WEBHOOK_SECRETS"] = (*app.config["STRIPE_WEBHOOK_SECRETS"], secret)
            click.echo(f"Webhook endpoint {endpoint} → {target}")
            builder = DatasetBuilder(demo, plans, start, seed, webhook_endpoint=endpoint)
            total = sum(len(plan.actions) for plan in plans)
            with phase("Stripe lifecycles", total) as advance:
                report = builder.run(progress=lambda done, _total: advance(done))
            advance_clock(demo, start + months * MONTH)
            if sandbox is not None:
                deliver_remaining(sandbox)
            archived = wait_until_archived(None) if not webhook_url else None
            keep_endpoint(demo, endpoint, secret, webhook_secret_file, serve_url)
            click.echo("Writing the accounts' users, sign-ins, sessions, logos and avatars")
            counts = write_records(db.session, [plan.records for plan in plans],
                                   BlobStore(current_app.config["BLOB_DIR"]))
            db.session.commit()
            click.echo(", ".join(f"{count} {name}" for name, count in counts.items())
                       + f"; {len(report.customers)} Stripe customers ({len(report.lost_webhooks)} with missed "
                       f"webhooks), {report.skipped} actions refused by Stripe")
            if archived is not None:
                replay_into_ledger(app, archived, len(report.customers))
                check_drift()
    finally:
        app.config.update(saved)


def advance_clock(demo: StripeDemo, end: int) -> None:
    """Move the sandbox's clock to `end` a month at a time (each month's renewals, invoices and payments happen
    as it passes), so that the longest phase of the load says how far it got."""
    now = demo.now()
    months = max(0, -(-(end - now) // MONTH))
    with phase("Advancing the sandbox's clock to today (renewals, invoices, payments)", months) as advance:
        for month in range(1, months + 1):
            demo.advance_to(min(now + month * MONTH, end))
            advance(month)


def deliver_remaining(sandbox: Any, *, report_every: float = 10.0, timeout: float = 3600.0) -> None:
    """Wait until the sandbox has delivered every webhook, saying every few seconds how far the archive got."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sandbox.webhooks.wait_idle(timeout=report_every)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
            archived = db.session.scalar(select(func.count()).select_from(StripeEvent))
            db.session.commit()  # a read, ended so that no transaction stays open across the webhook's writes
            click.echo(f"Delivering webhooks: {archived} events archived so far")


def check_drift() -> None:
    """One drift check of every account, so the banners speak from the first page the operator opens."""
    from backoffice.billing.reconcile.tasks import sweep_now

    result = sweep_now()
    db.session.commit()
    if "skipped" in result:
        click.echo(f"drift check skipped: {result['skipped']}")
        return
    flagged = db.session.scalar(select(func.count()).select_from(Subscription)
                                .where(Subscription.has_drift_detected.is_(True)))
    click.echo(f"drift check: {result['checked']} accounts checked, {flagged} with drift"
               + (f", {result['failed']} failed" if result["failed"] else "")
               + (f"; listing failed: {result['error']}" if result["error"] else ""))


def replay_into_ledger(app: Any, archived: int, customers: int) -> None:
    """Replay the archive once per customer (the jobs the webhook queued meanwhile are this same work)."""
    runner = in_process_runner(app)
    runner.forget()
    with phase("Replaying into the ledger", customers) as advance:
        totals = replay_all(progress=lambda done, _total: advance(done))
    click.echo(f"{archived} Stripe events archived; ledger: {totals['appended']} rows for "
               f"{totals['customers']} customers ({totals['ignored']} events ignored, {totals['failed']} failed, "
               f"{totals['waiting']} waiting for prices or coupons)")


def keep_endpoint(demo: StripeDemo, endpoint: str, secret: str, secret_file: str | None, serve_url: str) -> None:
    """Point the endpoint at the served app and keep its secret, or remove it (its URL dies with this command)."""
    if secret_file is None:
        demo.client.v1.webhook_endpoints.delete(endpoint)
        return
    demo.client.v1.webhook_endpoints.update(endpoint, params={"url": serve_url})
    Path(secret_file).write_text(secret + "\n")
    Path(secret_file).chmod(0o600)
