"""Benchmark an admin's Sync: how many Stripe calls it makes per 1,000 events of platform traffic.

    python -m benchmarks.bench_reconcile [--tenants 60]

Builds platform traffic in the sandbox (each tenant subscribes, renews twice and changes plan), with no
webhook delivered, then syncs one account: the platform-wide `events.list` walk archives every missed event,
the account is replayed and checked. Prints the events on the platform, the Stripe requests of the Sync by
route, and the calls per 1,000 events; then a second Sync a minute later reuses the walk.
"""
from __future__ import annotations

import argparse
import time
from collections import Counter

from backoffice.accounts.models import Tenant
from backoffice.billing.reconcile.tasks import sync_job, walk_job
from backoffice.billing.replay.tasks import replay_all
from backoffice.demo.scenarios import Scenario
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.dev import create_app
from backoffice.extensions import db
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from benchmarks.common import scratch_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=60)
    options = parser.parse_args()
    server = SandboxServer(Sandbox(SandboxSettings(currency="EUR", seed=9))).start()
    key = server.sandbox.settings.secret_key
    demo = StripeDemo.connect(server.url, key, "EUR")
    tenants = [f"ten_rec{index:04d}" for index in range(options.tenants)]
    scenarios = []
    for tenant in tenants:
        scenario = Scenario(demo, "bench", tenant)
        scenario.customer()
        scenario.subscribe("standard")
        scenarios.append(scenario)
    with scratch_database() as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "STRIPE_SECRET_KEY": key, "STRIPE_API_BASE": server.url,
                          "STRIPE_RATE_LIMIT": 1000, "LOG_LEVEL": "WARNING", "PLATFORM_CURRENCY": "EUR",
                          "IN_PROCESS_JOBS": "deferred"})
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            db.session.add_all(Tenant(id=tenant, name=tenant) for tenant in tenants)
            db.session.commit()
            # Yesterday's state: every account known (one walk and a replay), the anchor set.
            walk_job()
            replay_all()
            time.sleep(61)  # past the minute in which a Sync reuses a walk
            # Today's traffic, none of it delivered: every account upgrades, then half schedule a downgrade.
            events_before = len(server.sandbox.events.events)
            for scenario in scenarios:
                scenario.change_plan("premium")
            for scenario in scenarios[: len(scenarios) // 2]:
                scenario.schedule_downgrade("standard")
            events = len(server.sandbox.events.events) - events_before
            before = Counter(server.sandbox.request_counts)
            started = time.perf_counter()
            first = sync_job(tenants[0])
            elapsed = time.perf_counter() - started
            calls = Counter(server.sandbox.request_counts) - before
            before = Counter(server.sandbox.request_counts)
            second = sync_job(tenants[1])
            reused = Counter(server.sandbox.request_counts) - before
    server.stop()
    total = sum(calls.values())
    print(f"platform traffic since the last walk: {events:,} events from {options.tenants} tenants; no webhook delivered")
    print(f"first Sync: {elapsed:.1f} s, recovered {first.get('recovered')} events, appended {first.get('appended')} rows, "
          f"refused: {first.get('refused')}")
    print(f"Stripe requests: {total} ({1000 * total / max(1, events):.1f} per 1,000 events of platform traffic)")
    for route, count in calls.most_common():
        print(f"  {count:>5}  {route}")
    print(f"a second Sync within the minute reuses the walk: {sum(reused.values())} request(s), "
          f"recovered {second.get('recovered')}")


if __name__ == "__main__":
    main()
