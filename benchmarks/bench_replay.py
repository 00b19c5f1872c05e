"""Benchmark `flask billing replay --all`: a large archive replayed into the ledger on one worker.

    python -m benchmarks.bench_replay [--tenants 1000] [--months 24] [--copies 10]

The archive comes from the demo generator (the sandbox in this process, no webhooks), then is copied
`--copies` times under fresh ids (customers, tenants, events, invoices, charges), so that 1,000 tenants
× 24 months × 10 copies gives roughly half a million events without an hour of generation. Events are
COPYed in as pending, as the webhook leaves them; the replay then runs exactly as the CLI runs it.
Prints events per second and the process's peak memory before and after the replay.
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

from backoffice import create_app
from backoffice.billing.tasks import replay_all
from backoffice.billing.webhook_intake import read_envelope
from backoffice.demo.generator import MONTH, DatasetBuilder, plan_tenants
from backoffice.demo.stripe_demo import StripeDemo
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
                for text in events:
                    raw = COPIED_IDS.sub(lambda match, c=copy: f'"{match.group(1)}_c{c}', text).encode()
                    envelope = read_envelope(raw)
                    feed.write_row((envelope.id, envelope.created, envelope.type, envelope.api_version,
                                    envelope.customer_id, envelope.subscription_id, raw.decode(),
                                    hashlib.sha256(raw).hexdigest(), "pending"))
                    count += 1
    db.session.commit()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    logging.getLogger("stripe").setLevel(logging.WARNING)

    began = time.perf_counter()
    events, tenant_ids = generate(options.tenants, options.months, options.seed)
    print(f"generated {len(events)} events for {options.tenants} tenants over {options.months} months "
          f"in {time.perf_counter() - began:.1f} s")
    with scratch_database() as uri:
        app = create_app({"LOG_LEVEL": "WARNING", "SQLALCHEMY_DATABASE_URI": uri, "SETTLE_SECONDS": 0,
                          "REDIS_URL": None, "STRIPE_SECRET_KEY": None, "STRIPE_API_BASE": None})
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            loading = time.perf_counter()
            total = load_archive(events, tenant_ids, options.copies)
            del events
            print(f"archive: {total} pending events ({options.copies} copies) COPYed in "
                  f"{time.perf_counter() - loading:.1f} s; peak RSS so far {peak_mib():.0f} MiB")
            replaying = time.perf_counter()
            totals = replay_all()
            seconds = time.perf_counter() - replaying
            print(f"replay --all: {totals}")
            print(f"  {seconds:.1f} s, {total / seconds:,.0f} events/s (target: 5,000/s on one worker); "
                  f"peak RSS {peak_mib():.0f} MiB at {datetime.now(UTC):%H:%M:%S}")
            db.engine.dispose()


if __name__ == "__main__":
    main()
