"""`flask billing prove`: N random lifecycles through Stripe and the real webhook, reconciled, then checked.

One run: a sandbox in this process (Stripe), Backoffice's app served on a loopback port (its real
`POST /webhooks/stripe`), an empty database. The lifecycles (`prove_lifecycles`) are played in time order
while the sandbox's clock moves across the months; the sandbox signs and delivers every event with 20 %
duplicated, 10 % held back and sent out of order, 5 % dropped. Every two weeks of Stripe time, as the
scheduler and the workers would: deliveries settle and the platform-wide `events.list` walk archives what
was dropped (before Stripe's 30 days forget it); every four weeks the queued replays run. At the end: a last walk,
`replay_all`, and the checks of `prove_checks`.

Plain Python: the app is an argument; the CLI command and the benchmark call `prove`.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import Flask
from sqlalchemy import func, select, update

from backoffice.accounts.models import Tenant
from backoffice.billing.models import StripeEvent
from backoffice.billing.reconcile.tasks import walk_job
from backoffice.billing.replay.tasks import replay_all
from backoffice.demo.delivery import local_webhook
from backoffice.demo.generator import BILLING_CURRENCIES, CLOCK_STEP, DAY, MONTH, TenantPlan
from backoffice.demo.prove_checks import Check, run_checks
from backoffice.demo.prove_lifecycles import (
    LifecycleDriver,
    PriceBook,
    ProveMix,
    ensure_price_book,
    plan_lifecycles,
    play,
)
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.demo.writer import copy_rows
from backoffice.extensions import db
from backoffice.fx import rates as fx_rates
from backoffice.jobs import in_process_runner

# VAT per customer country (percent), as the demo's.
VAT_RATES = {"DK": Decimal(25), "SE": Decimal(25), "NO": Decimal(25), "FI": Decimal("25.5"), "DE": Decimal(19),
             "NL": Decimal(21), "FR": Decimal(20), "GB": Decimal(20)}
DELIVERY = {"duplicate_rate": 0.2, "shuffle_rate": 0.1, "drop_rate": 0.05}
# How often (in Stripe time) the events.list walk passes (well inside Stripe's 30 days), and every how many
# walks the queued replays run (as busy workers would: late and recovered events then meet written rows).
CHECKPOINT = 14 * DAY
REPLAY_EVERY = 2
# The sandbox is ours: Backoffice's gateway need not ration its calls to Stripe's test-mode 25/s.
SANDBOX_RATE_LIMIT = 10_000


class ProveRefused(Exception):
    """The database is not empty (the prove compares whole-platform totals)."""


@dataclass
class ProveReport:
    lifecycles: int
    seed: int
    months: int
    customers: int = 0
    actions: int = 0
    refused_actions: int = 0
    generated: int = 0
    delivered: int = 0
    duplicated: int = 0
    held_back: int = 0
    dropped: int = 0
    recovered: int = 0
    before_endpoint: int = 0
    archived: int = 0
    replays: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def seconds(self) -> float:
        return sum(self.phases.values())

    @property
    def events_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds else 0.0

    def figures(self) -> list[str]:
        lines = [
            f"lifecycles {self.lifecycles} (seed {self.seed}, {self.months} months): {self.customers} Stripe customers, "
            f"{self.actions} actions ({self.refused_actions} refused by Stripe)",
            f"events: {self.generated} generated, {self.delivered} delivered by the webhook "
            f"({self.duplicated} duplicated, {self.held_back} out of order), {self.dropped} dropped, "
            f"{self.recovered} recovered by the events.list walk ({self.before_endpoint} of them older than the "
            f"webhook endpoint); {self.archived} archived; {self.replays} replay jobs",
        ]
        lines += [f"  {name:<28} {seconds:8.1f} s" for name, seconds in self.phases.items()]
        lines.append(f"  {'total':<28} {self.seconds:8.1f} s  ({self.events_per_second:.0f} events/s)")
        return lines


class Phases:
    """Wall time per named phase (a phase entered twice adds up)."""

    def __init__(self, report: ProveReport):
        self.report = report

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.report.phases[name] = self.report.phases.get(name, 0.0) + time.perf_counter() - began


def require_empty_database() -> None:
    tenants = db.session.scalar(select(func.count()).select_from(Tenant))
    events = db.session.scalar(select(func.count()).select_from(StripeEvent))
    db.session.commit()
    if tenants or events:
        raise ProveRefused(f"the database holds {tenants} tenants and {events} Stripe events; "
                           "the prove runs on an empty one")


@contextmanager
def sandbox_in_process(currency: str, seed: int, start: int) -> Iterator[Any]:
    from backoffice.stripe_sandbox import Sandbox, SandboxSettings
    from backoffice.stripe_sandbox.server import SandboxServer

    settings = SandboxSettings(currency=currency, tax_rates=VAT_RATES, seed=seed, start_time=start)
    settings.webhook_retry_base_seconds = 0.2
    settings.webhook_retry_max_seconds = 2.0
    server = SandboxServer(Sandbox(settings)).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def configured(app: Flask, **values: Any) -> Iterator[None]:
    saved = {key: app.config.get(key) for key in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(saved)


def prove(app: Flask, lifecycles: int, seed: int, months: int = 12, *, mix: ProveMix | None = None,
          echo: Callable[[str], None] = print) -> ProveReport:
    """Play, deliver, reconcile and check; the app context must be pushed and the database empty."""
    require_empty_database()
    # The reports convert the customers' other currencies with the ECB's rates (docs/currencies.md).
    fx_rates.refresh(db.session, fx_rates.parse(fx_rates.bundled_lines()))
    db.session.commit()
    report = ProveReport(lifecycles, seed, months)
    phase = Phases(report)
    start = int(time.time()) - months * MONTH
    start -= start % DAY
    currency = app.config["PLATFORM_CURRENCY"]
    with sandbox_in_process(currency, seed, start) as server, local_webhook(app) as target:
        sandbox = server.sandbox
        demo = StripeDemo.connect(server.url, sandbox.settings.secret_key, currency)
        endpoint, secret = demo.listen(target)
        report.before_endpoint = len(sandbox.events.events)  # the catalog's: only a walk can archive them
        demo._raw("post", f"/v1/test_helpers/webhook_endpoints/{endpoint}/delivery_knobs", seed=seed, **DELIVERY)
        with configured(app, IN_PROCESS_JOBS="deferred", REDIS_URL=None, SETTLE_SECONDS=0,
                        STRIPE_API_BASE=server.url, STRIPE_SECRET_KEY=sandbox.settings.secret_key,
                        STRIPE_RATE_LIMIT=SANDBOX_RATE_LIMIT,
                        STRIPE_WEBHOOK_SECRETS=(*app.config["STRIPE_WEBHOOK_SECRETS"], secret)):
            runner = in_process_runner(app)
            run = Run(app, demo, report, phase, runner, sandbox, echo)
            with phase("write tenants"):
                plans = plan_lifecycles(seed, lifecycles, months, start, mix)
                copy_rows(db.session, Tenant.__table__, (plan.records.tenant for plan in plans))
                db.session.commit()
            drivers = run.play(plans, start, start + months * MONTH)
            with phase("final walk and replay_all"):
                run.settle_deliveries()
                run.walk()
                runner.forget()
                totals = replay_all()
                echo(f"replay_all: {totals}")
            counts = sandbox.webhooks.endpoints[endpoint].counts
            report.generated = len(sandbox.events.events)
            report.duplicated, report.held_back, report.dropped = (counts["duplicated"], counts["held_back"],
                                                                   counts["dropped"])
            report.archived = db.session.scalar(select(func.count()).select_from(StripeEvent))
            report.delivered = db.session.scalar(select(func.count()).select_from(StripeEvent)
                                                 .where(StripeEvent.recovery_source.is_(None)))
            db.session.commit()
            echo("Checking the books against Stripe …")
            with phase("checks"):
                report.checks = run_checks(app, demo.client, sandbox, drivers)
    return report


class Run:
    """The moving parts of one prove: Stripe's clock and lifecycles, deliveries, replays and walks."""

    def __init__(self, app: Flask, demo: StripeDemo, report: ProveReport, phase: Phases, runner: Any, sandbox: Any,
                 echo: Callable[[str], None]):
        self.app, self.demo, self.report, self.phase = app, demo, report, phase
        self.runner, self.sandbox, self.echo = runner, sandbox, echo
        self.checkpoints = 0

    def play(self, plans: list[TenantPlan], start: int, end: int) -> list[LifecycleDriver]:
        """Play every action in time order, with a checkpoint every CHECKPOINT of Stripe time."""
        with self.phase("Stripe lifecycles + webhook"):
            books: dict[str, PriceBook] = {}

            def book(currency: str) -> PriceBook:
                if currency not in books:
                    books[currency] = ensure_price_book(self.demo, currency)
                return books[currency]
            for currency in sorted({self.demo.catalog.currency, *(c.lower() for c in BILLING_CURRENCIES.values())}):
                book(currency)  # every currency's prices made before the lifecycles start
        rng = random.Random(f"prove-drivers:{self.report.seed}")
        drivers = [LifecycleDriver(self.demo, plan, rng, book, self.delete_tenant) for plan in plans]
        agenda = sorted(((start + action.at, index, order, action) for index, plan in enumerate(plans)
                         for order, action in enumerate(plan.actions)), key=lambda entry: entry[:3])
        self.report.actions = len(agenda)
        checkpoint = start + CHECKPOINT
        for done, (instant, index, _order, action) in enumerate(agenda, start=1):
            while instant >= checkpoint:
                self.checkpoint(checkpoint, start, end)
                checkpoint += CHECKPOINT
            with self.phase("Stripe lifecycles + webhook"):
                self.demo.advance_to(instant - instant % CLOCK_STEP)
                self.report.refused_actions += not play(drivers[index], action)
            if done % 500 == 0:
                self.echo(f"  {done}/{len(agenda)} actions, {len(self.sandbox.events.events)} events")
        while checkpoint < end:
            self.checkpoint(checkpoint, start, end)
            checkpoint += CHECKPOINT
        with self.phase("Stripe lifecycles + webhook"):
            self.demo.advance_to(end)
        self.report.customers = sum(1 for driver in drivers if driver.run.customer_id)
        return drivers

    def checkpoint(self, instant: int, start: int, end: int) -> None:
        """Move Stripe's clock there, run the queued replays, let deliveries settle, walk events.list."""
        with self.phase("Stripe lifecycles + webhook"):
            self.demo.advance_to(instant)
        self.checkpoints += 1
        if self.checkpoints % REPLAY_EVERY == 0:
            with self.phase("replays (as workers)"):
                self.report.replays += self.runner.drain()
        with self.phase("events.list walks"):
            self.settle_deliveries()
            self.walk()
        day = (instant - start) // DAY
        self.echo(f"  day {day}/{(end - start) // DAY}: {len(self.sandbox.events.events)} events, "
                  f"{self.report.recovered} recovered so far")

    def settle_deliveries(self) -> None:
        """Wait until every delivery (held-back ones included) has been answered."""
        with self.phase("Stripe lifecycles + webhook"):
            self.sandbox.webhooks.wait_idle(timeout=3600)

    def walk(self) -> None:
        result = walk_job()
        if result.get("error") or not result.get("complete"):
            raise RuntimeError(f"the events.list walk did not complete: {result}")
        self.report.recovered += result["recovered"]

    def delete_tenant(self, tenant_id: str, instant: int) -> None:
        """The product soft-deletes the tenant (its money history stays)."""
        db.session.execute(update(Tenant).where(Tenant.id == tenant_id)
                           .values(deleted_at=datetime.fromtimestamp(instant, UTC)))
        db.session.commit()
