"""Benchmark `flask billing replay --all`: a large archive replayed into the ledger on one worker.

    python -m benchmarks.bench_replay [--tenants 1000] [--months 24] [--copies 10] [--template NAME] [--fingerprint]

The archive comes from the demo generator (the sandbox in this process, no webhooks), then is copied
`--copies` times under fresh ids (customers, tenants, events, invoices, charges), so that 1,000 tenants
× 24 months × 10 copies gives roughly half a million events without an hour of generation. Events are
COPYed in as pending, as the webhook leaves them; the replay then runs exactly as the CLI runs it.
Prints events per second and the process's peak memory before and after the replay.

`--template NAME` keeps the loaded, still pending archive as database NAME and, when NAME exists, replays a
clone of it instead of generating: the run is then replay-only, so its peak RSS is the replay's own (drop
NAME when done). `--fingerprint` prints digests of what the replay wrote, minus its random ids and clocks,
to compare two versions of the replayer on the same archive.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import resource
import time
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backoffice.billing.intake.webhook import read_envelope
from backoffice.billing.replay.tasks import replay_all
from backoffice.demo.generator import MONTH, DatasetBuilder, plan_tenants
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.dev import create_app
from backoffice.extensions import db
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from benchmarks.common import scratch_database

# Ids that must stay unique per copy; the prefix stays so that ids still look like Stripe's.
COPIED_IDS = re.compile(r'"(evt|cus|in|ch|re|cn|py|inpay|pi|pm|sub|sub_sched|di|si|ten)_')


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(tenants: int, months: int, seed: int) -> tuple[list[str], list[str]]:
    """Return the events (JSON text) and the tenant ids of one generated dataset."""
    start = int(time.time()) - months * MONTH
    settings = SandboxSettings(currency="EUR", tax_rates={"DK": Decimal(25), "DE": Decimal(19)}, seed=seed,
                               start_time=start)
    server = SandboxServer(Sandbox(settings)).start()
    try:
        plans = plan_tenants(seed, tenants, months, start)
        demo = StripeDemo.connect(server.url, settings.secret_key, "EUR")
        DatasetBuilder(demo, plans, start, seed).run()
        demo.advance_to(start + months * MONTH)
        events = [json.dumps(event) for event in server.sandbox.events.events]
    finally:
        server.stop()
    return events, [plan.tenant_id for plan in plans]


def load_archive(events: list[str], tenant_ids: list[str], copies: int) -> int:
    """COPY every copy of the events (pending) and the tenants they name; return the number of events."""
    connection = db.session.connection().connection.driver_connection
    count = 0
    with connection.cursor() as cursor:
        for copy in range(copies):
            with cursor.copy("COPY tenants (id, name, country, plan) FROM STDIN") as feed:
                for tenant_id in tenant_ids:
                    feed.write_row((f"ten_c{copy}{tenant_id[4:]}", f"Tenant {copy} {tenant_id}", "DK", "basis"))
            with cursor.copy("COPY stripe_events (id, stripe_created_at, type, api_version, stripe_customer_id, "
                             "stripe_subscription_id, payload, payload_hash, status) FROM STDIN") as feed:
                for event in events:
                    raw = COPIED_IDS.sub(lambda match, c=copy: f'"{match.group(1)}_c{c}', event).encode()
                    envelope = read_envelope(raw)
                    feed.write_row((envelope.id, envelope.created, envelope.type, envelope.api_version,
                                    envelope.customer_id, envelope.subscription_id, raw.decode(),
                                    hashlib.sha256(raw).hexdigest(), "pending"))
                    count += 1
    db.session.commit()
    return count


# What the replay writes, without its random ids (ledger and subscription rows) and clocks, each in a fixed order.
FINGERPRINTS = {
    "ledger": "SELECT b.stripe_event_id, b.tenant_id, b.currency, b.occurred_at, b.position, b.cancellation_reason, "
              "b.suspension_reason, b.event_type, b.from_plan, b.to_plan, b.previous_amount, b.new_amount, "
              "b.amount_delta, b.committed_mrr, b.movement FROM billing_events b ORDER BY b.stripe_event_id",
    "corrections": "SELECT b.stripe_event_id, c.caused_by, c.reason, c.position, c.event_type, c.from_plan, c.to_plan, "
                   "c.previous_amount, c.new_amount, c.amount_delta, c.committed_mrr, c.movement "
                   "FROM billing_event_corrections c JOIN billing_events b ON b.id = c.billing_event_id "
                   "ORDER BY b.stripe_event_id, c.id",
    "payments": "SELECT p.id, p.tenant_id, p.amount, p.amount_excluding_tax, p.tax_amount, p.invoice_total, "
                "p.amount_from_credit, p.refunded_amount, p.credited_amount, p.currency, p.status, p.date, p.plan, "
                "p.invoice_url, p.credit_note_url, p.credit_noted_at, p.refunded_at, p.failure_reason "
                "FROM payment_transactions p ORDER BY p.id",
    "subscriptions": "SELECT s.tenant_id, s.stripe_customer_id, s.stripe_subscription_id, s.status, s.plan, "
                     "s.scheduled_plan, s.current_price_amount, s.current_price_currency, s.scheduled_price_amount, "
                     "s.current_period_end, s.cancel_at_period_end, s.cancellation_reason, s.first_payment_failed_at, "
                     "s.subscribed_since, s.forward_mrr, s.account_status, s.payment_method, s.billing_info "
                     "FROM subscriptions s ORDER BY s.tenant_id",
    "tenants": "SELECT t.id, t.plan, t.state, t.suspension_reason FROM tenants t ORDER BY t.id",
    "mrr_daily": "SELECT m.* FROM mrr_daily m ORDER BY m.day, m.currency, m.movement",
    "archive": "SELECT e.id, e.status, e.error, e.tenant_id FROM stripe_events e ORDER BY e.id",
}


def fingerprint() -> dict[str, str]:
    """An MD5 digest per table of what the replay wrote (identical on the same archive whatever the replayer)."""
    digests = {}
    for name, query in FINGERPRINTS.items():
        digests[name] = db.session.scalar(text(
            f"SELECT count(*) || ':' || coalesce(md5(string_agg(row_to_json(r)::text, '|' ORDER BY n)), '-') "
            f"FROM (SELECT q.*, row_number() OVER () AS n FROM ({query}) q) r"))
    db.session.rollback()
    return digests


def from_template(uri: str, template: str) -> bool:
    """Replace the new, still empty scratch database by a clone of `template`; False when there is none yet."""
    url = make_url(uri)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone() is None:
            return False
        conn.execute(f'DROP DATABASE "{url.database}"')
        conn.execute(f'CREATE DATABASE "{url.database}" TEMPLATE "{template}"')
    return True


def save_template(uri: str, template: str) -> None:
    """Keep the loaded archive as database `template` (no session may be connected to the scratch one)."""
    db.engine.dispose()
    url = make_url(uri)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{template}" TEMPLATE "{url.database}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--template", help="database keeping the loaded archive, reused when it exists")
    parser.add_argument("--fingerprint", action="store_true", help="print digests of what the replay wrote")
    options = parser.parse_args()
    logging.getLogger("stripe").setLevel(logging.WARNING)

    with scratch_database() as uri:
        app = create_app({"LOG_LEVEL": "WARNING", "SQLALCHEMY_DATABASE_URI": uri, "SETTLE_SECONDS": 0,
                          "REDIS_URL": None, "STRIPE_SECRET_KEY": None, "STRIPE_API_BASE": None})
        with app.app_context():
            if options.template and from_template(uri, options.template):
                total = db.session.scalar(text("SELECT count(*) FROM stripe_events WHERE status = 'pending'"))
                db.session.rollback()
                print(f"archive: {total} pending events cloned from database {options.template}; "
                      f"peak RSS so far {peak_mib():.0f} MiB")
            else:
                began = time.perf_counter()
                events, tenant_ids = generate(options.tenants, options.months, options.seed)
                print(f"generated {len(events)} events for {options.tenants} tenants over {options.months} months "
                      f"in {time.perf_counter() - began:.1f} s")
                from flask_migrate import upgrade

                upgrade()
                loading = time.perf_counter()
                total = load_archive(events, tenant_ids, options.copies)
                del events
                print(f"archive: {total} pending events ({options.copies} copies) COPYed in "
                      f"{time.perf_counter() - loading:.1f} s; peak RSS so far {peak_mib():.0f} MiB")
                if options.template:
                    save_template(uri, options.template)
            replaying = time.perf_counter()
            totals = replay_all()
            seconds = time.perf_counter() - replaying
            print(f"replay --all: {totals}")
            print(f"  {seconds:.1f} s, {total / seconds:,.0f} events/s (target: 5,000/s on one worker); "
                  f"peak RSS {peak_mib():.0f} MiB at {datetime.now(UTC):%H:%M:%S}")
            if options.fingerprint:
                for name, digest in fingerprint().items():
                    print(f"  fingerprint {name}: {digest}")
            db.engine.dispose()


if __name__ == "__main__":
    main()
