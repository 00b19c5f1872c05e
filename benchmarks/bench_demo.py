"""Benchmark the demo dataset build: tenants over months through the sandbox, then the product-side rows.

    python -m benchmarks.bench_demo [--tenants 10000] [--months 24] [--seed 1]

The sandbox runs in this process on a loopback port (the SDK talks to it over HTTP, as in the demo).
Product rows are written with COPY into a scratch database on the server of DATABASE_URL (or the
embedded PostgreSQL), dropped afterwards, so the benchmark leaves nothing behind. Prints wall times per phase and the sizes.
"""
from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from decimal import Decimal

from backoffice.blobs import BlobStore
from backoffice.demo.generator import MONTH, DatasetBuilder, plan_tenants
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.demo.writer import write_records
from backoffice.dev import create_app
from backoffice.extensions import db
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from benchmarks.common import scratch_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    logging.getLogger("stripe").setLevel(logging.WARNING)

    start = int(time.time()) - options.months * MONTH
    settings = SandboxSettings(currency="EUR", tax_rates={"DK": Decimal(25), "DE": Decimal(19)}, seed=options.seed,
                               start_time=start)
    server = SandboxServer(Sandbox(settings)).start()
    began = time.perf_counter()
    plans = plan_tenants(options.seed, options.tenants, options.months, start)
    planned = time.perf_counter()
    demo = StripeDemo.connect(server.url, settings.secret_key, "EUR")
    report = DatasetBuilder(demo, plans, start, options.seed).run()
    demo.advance_to(start + options.months * MONTH)
    played = time.perf_counter()
    events = len(server.sandbox.events.events)
    calls = sum(server.sandbox.request_counts.values())
    server.stop()

    with scratch_database() as uri:
        app = create_app({"LOG_LEVEL": "WARNING", "SQLALCHEMY_DATABASE_URI": uri})
        with app.app_context(), tempfile.TemporaryDirectory() as blobs:
            from flask_migrate import upgrade

            upgrade()
            written_started = time.perf_counter()
            counts = write_records(db.session, [plan.records for plan in plans], BlobStore(blobs))
            db.session.commit()
            written = time.perf_counter() - written_started
            db.engine.dispose()

    total = planned - began + played - planned + written
    print(f"dataset: {options.tenants} tenants over {options.months} months, seed {options.seed}")
    print(f"  {counts}, {len(report.customers)} Stripe customers, {events} Stripe events, {calls} API calls")
    print(f"plan (records and lifecycles): {planned - began:8.1f} s")
    print(f"play against the sandbox:      {played - planned:8.1f} s  ({calls / (played - planned):.0f} calls/s)")
    print(f"write product rows (COPY):     {written:8.1f} s")
    print(f"total:                         {total:8.1f} s  (target: under 1200 s for 10,000 tenants x 24 months)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
