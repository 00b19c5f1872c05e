"""`flask billing …`: replay the archive into the ledger, verify the ledger against the archive."""
from __future__ import annotations

from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from backoffice.billing.replay.shards import ReplayShardFailed
from backoffice.billing.replay.tasks import PARALLEL_FROM, replay_all
from backoffice.extensions import db


@click.group("billing")
def billing_group() -> None:
    """The billing ledger: replay and verify."""


@billing_group.command("replay")
@click.option("--customer", "customers", multiple=True, metavar="ID", help="A Stripe customer id (repeatable).")
@click.option("--all", "everyone", is_flag=True, help="Every customer with pending, failed or ignored events.")
@click.option("--processes", type=click.IntRange(min=1), metavar="N",
              help="Processes sharing the customers (by a hash of their id). Default: the usable CPUs, or 1 for "
                   f"fewer than {PARALLEL_FROM} customers; 1 replays in this process.")
@with_appcontext
def replay_command(customers: tuple[str, ...], everyone: bool, processes: int | None) -> None:
    """Replay archived events into the ledger now (what the worker does after each webhook)."""
    if bool(customers) == everyone:
        raise click.UsageError("give --customer ID (one or more) or --all")
    with click.progressbar(length=len(customers) or 1, label="Replaying customers") as bar:
        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        try:
            totals = replay_all(list(customers) or None, progress=progress, processes=processes)
        except ReplayShardFailed as failure:
            raise click.ClickException(str(failure)) from failure
    click.echo(", ".join(f"{name} {value}" for name, value in totals.items()))
    if totals["failed"]:
        raise SystemExit(1)


@billing_group.command("verify")
@with_appcontext
def verify_command() -> None:
    """Recompute every ledger row and payment from the archive in memory; list each that differs (writes nothing).

    Exits 0 only when the ledger and the payments both match.
    """
    from backoffice.billing.replay import ReplaySettings
    from backoffice.billing.replay.tasks import gateway
    from backoffice.billing.replay.verify import verify_books

    result = verify_books(db.session, ReplaySettings.from_config(current_app.config), gateway())
    db.session.rollback()
    for difference in result.ledger + result.payments:
        click.echo(str(difference))
    click.echo(f"{len(result.ledger)} ledger difference(s), {len(result.payments)} payment difference(s)")
    if not result.clean:
        raise SystemExit(1)


@billing_group.command("restate")
@click.option("--customer", "customers", multiple=True, metavar="ID", help="A Stripe customer id (repeatable); "
              "default: every customer.")
@click.option("--dry-run", is_flag=True, help="List what would be corrected; write nothing.")
@click.option("--operator", help="The operator id the restatement is audited under.")
@click.option("--reason", help="Why: it goes into the audit log.")
@with_appcontext
def restate_command(customers: tuple[str, ...], dry_run: bool, operator: str | None, reason: str | None) -> None:
    """Repair rows computed wrong (a rule fixed, a price or coupon learned late) by appending corrections."""
    from backoffice.billing.reconcile.restatement import restate
    from backoffice.billing.replay import ReplaySettings
    from backoffice.billing.replay.tasks import gateway

    if not dry_run and not (operator and reason and reason.strip()):
        raise click.UsageError("a restatement is audited: give --operator and --reason (or --dry-run)")
    result = restate(db.session, ReplaySettings.from_config(current_app.config), gateway(),
                     operator_id=operator or "", reason=reason or "dry run", customers=list(customers) or None,
                     dry_run=dry_run)
    for difference in result.differences:
        click.echo(str(difference))
    for difference in result.rowless:
        click.echo(f"{difference} (no row: a Sync or a disaster recovery restores it)")
    for difference in result.unpriced:
        click.echo(f"{difference.customer_id}: {difference.recomputed} (restated once it can be priced)")
    if dry_run:
        db.session.rollback()
        click.echo(f"dry run: {len(result.differences)} difference(s) on {len(result.customers)} customer(s)")
        return
    db.session.commit()
    audit = f" (audit entry {result.audit_id})" if result.audit_id else ""
    click.echo(f"{result.corrected} correction(s) appended for {len(result.customers)} customer(s){audit}")


@billing_group.command("rebuild-rollups")
@with_appcontext
def rebuild_rollups_command() -> None:
    """Rebuild mrr_daily from the ledger, listing every day that differed."""
    from backoffice.read_models.mrr_daily import rebuild

    differences = rebuild(db.session, current_app.config["PLATFORM_CURRENCY"])
    db.session.commit()
    for difference in differences:
        click.echo(str(difference))
    click.echo(f"{len(differences)} difference(s); mrr_daily now follows the ledger")


@billing_group.command("reconcile")
@click.argument("tenant_id")
@click.option("--recover-from", "cutoff", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
              help="Disaster recovery (DESIGN §4.11) from this UTC cutoff; needs --operator and --reason.")
@click.option("--operator", help="The operator id the recovery is audited under.")
@click.option("--reason", help="Why: it goes into the audit log.")
@with_appcontext
def reconcile_command(tenant_id: str, cutoff: datetime | None, operator: str | None, reason: str | None) -> None:
    """Sync one account with Stripe, as the admin's Sync button does (without the audit entry), and print
    what it recovered, appended and found; with --recover-from, the disaster recovery of the red panel."""
    from backoffice.billing.reconcile.tasks import sync_job

    if cutoff is not None and not (operator and reason and reason.strip()):
        raise click.UsageError("a disaster recovery is audited: give --operator and --reason")
    result = sync_job(tenant_id, operator, reason, cutoff.replace(tzinfo=UTC).isoformat() if cutoff else None)
    if "refused" in result:
        raise click.ClickException(f"sync refused: {result['refused']} {result['refused_params']}")
    click.echo(f"recovered {result['recovered']} event(s), appended {result['appended']} ledger row(s)")
    if "recovery" in result:
        click.echo(f"disaster recovery from {result['recovery']['cutoff']}: {result['recovery']['gaps']} gap(s)"
                   + (f", baseline {result['recovery']['baseline']}" if result["recovery"]["gaps"] else ""))
    for item in result["discrepancies"]:
        click.echo(f"{item['severity']}: {item['kind']}: {item['message']}")
    click.echo("clean" if result["clean"] else f"{len(result['discrepancies'])} discrepancy(ies)")


@billing_group.command("walk-events")
@with_appcontext
def walk_events_command() -> None:
    """Walk Stripe's events.list once from the anchor and archive what the webhook missed."""
    from backoffice.billing.reconcile.tasks import walk_job

    click.echo(", ".join(f"{key} {value}" for key, value in walk_job().items()))


@billing_group.command("sweep")
@click.option("--wait", is_flag=True, help="Block until every due subscription is checked; print the summary.")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Give up waiting after so many seconds.")
@with_appcontext
def sweep_command(wait: bool, timeout: float) -> None:
    """Start the drift sweep (the same job as the Jobs page's button)."""
    import time

    from backoffice.billing.reconcile import sweep
    from backoffice.billing.reconcile.tasks import sweep_job

    started = sweep_job()
    if "skipped" in started:
        click.echo(started["skipped"])
        return
    click.echo(f"sweep {started['sweep']}: {started['due']} due, {started['pages']} listing page(s)")
    deadline = time.monotonic() + timeout
    while wait:
        db.session.rollback()  # see the chunk jobs' commits
        state = sweep.read_state(db.session)
        if state is None or state.error or state.remaining == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    if wait and state is not None:
        click.echo(f"checked {state.checked}, failed {len(state.failures)}, remaining {state.remaining}"
                   + (f"; listing failed: {state.error}" if state.error else ""))
        for failure in state.failures:
            click.echo(f"failed: {failure['tenant']}: {failure['error']}")
