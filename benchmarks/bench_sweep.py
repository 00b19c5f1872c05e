"""Benchmark the drift sweep: N subscriptions checked against the sandbox by RQ workers under Stripe's rate limit.

    python -m benchmarks.bench_sweep [--subscriptions 10000] [--workers 2] [--rate 100]

The sandbox serves Stripe's API on loopback with its read limit set to `--rate` requests/s (Stripe's live
limit is 100); the workers share one token bucket in Redis at 80 % of it. One real subscription is made
through the SDK, then cloned N times in the sandbox (new ids and customers); the local books get the
matching tenants and subscriptions, every one due. The sweep's coordinator lists Stripe's subscriptions and
queues one chunk job per page; `--workers` burst workers drain them. Prints the wall time, the Stripe
requests made and their number per subscription, and what the checks found.
"""
from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from redis import Redis

from backoffice.accounts.models import Tenant
from backoffice.billing.models import Subscription
from backoffice.billing.reconcile import sweep
from backoffice.billing.reconcile.tasks import sweep_job
from backoffice.demo.scenarios import Scenario
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.demo.writer import copy_rows
from backoffice.dev import create_app
from backoffice.extensions import db
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from benchmarks.common import scratch_database

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def clone_subscriptions(sandbox: Sandbox, template: dict, count: int) -> list[tuple[str, str]]:
    """Add `count` copies of a subscription under new customers; return (tenant id, customer id) pairs."""
    pairs = []
    for index in range(count):
        customer_id = f"cus_bench{index:07d}"
        clone = copy.deepcopy(template)
        clone["id"] = f"sub_bench{index:07d}"
        clone["customer"] = customer_id
        clone["created"] = template["created"] + index
        sandbox.store.add(clone, "subscription")
        pairs.append((f"ten_bench{index:07d}", customer_id))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=int, default=100, help="the sandbox's read limit, requests/s")
    options = parser.parse_args()
    server = SandboxServer(Sandbox(SandboxSettings(currency="EUR", seed=3, rate_limit_reads=options.rate))).start()
    key = server.sandbox.settings.secret_key
    demo = StripeDemo.connect(server.url, key, "EUR")
    scenario = Scenario(demo, "bench", "ten_template")
    scenario.customer()
    template = server.sandbox.store.get("subscription", scenario.subscribe("standard"))
    pairs = clone_subscriptions(server.sandbox, template, options.subscriptions)
    Redis.from_url(REDIS_URL).flushdb()
    with scratch_database() as url:
        config = {"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": REDIS_URL, "STRIPE_SECRET_KEY": key,
                  "STRIPE_API_BASE": server.url, "STRIPE_RATE_LIMIT": int(options.rate * 0.8), "LOG_LEVEL": "WARNING",
                  "PLATFORM_CURRENCY": "EUR"}
        app = create_app(config)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            now = datetime.now(UTC)
            copy_rows(db.session, Tenant.__table__, ({"id": t, "name": f"Bench {t[-7:]}", "created_at": now, "state": "active",
                                                      "plan": "standard"} for t, _ in pairs))
            copy_rows(db.session, Subscription.__table__, (
                {"id": f"sbs_{t[4:]}", "tenant_id": t, "created_at": now, "stripe_customer_id": c, "status": "active",
                 "plan": "standard", "current_price_amount": Decimal("49.00"), "current_price_currency": "EUR",
                 "cancel_at_period_end": False, "forward_mrr": Decimal("49.00"), "account_status": "active",
                 "has_drift_detected": False, "drift_discrepancies": "[]"} for t, c in pairs))
            db.session.commit()
            requests_before = sum(server.sandbox.request_counts.values())
        env = {**os.environ, "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
               "REDIS_URL": REDIS_URL, "STRIPE_SECRET_KEY": key, "STRIPE_API_BASE": server.url,
               "STRIPE_RATE_LIMIT": str(int(options.rate * 0.8)), "LOG_LEVEL": "WARNING", "SECRET_KEY": "bench",
               "PLATFORM_CURRENCY": "EUR"}
        # Workers run while the coordinator lists, as in production: chunks are checked as their pages arrive.
        workers = [subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL) for _ in range(options.workers)]
        time.sleep(5)  # let them start (imports, app) before the clock starts
        with app.app_context():
            started = time.perf_counter()
            listed = sweep_job()
            listing_s = time.perf_counter() - started
            while True:
                db.session.rollback()
                state = sweep.read_state(db.session)
                if state.remaining == 0 or time.perf_counter() - started > 1800:
                    break
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            flagged = db.session.query(Subscription).filter(Subscription.has_drift_detected.is_(True)).count()
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
        requests = sum(server.sandbox.request_counts.values()) - requests_before
    server.stop()
    print(f"{options.subscriptions:,} subscriptions, {options.workers} workers, sandbox read limit {options.rate}/s, "
          f"bucket {int(options.rate * 0.8)}/s shared in Redis")
    print(f"listing: {listed['pages']} pages in {listing_s:.1f} s; whole sweep {elapsed:.1f} s")
    print(f"checked {state.checked:,}, failed {len(state.failures)}, flagged {flagged}")
    print(f"Stripe requests: {requests} ({requests / max(1, options.subscriptions):.3f} per subscription, "
          f"one per {options.subscriptions / max(1, requests):.0f})")


if __name__ == "__main__":
    main()
