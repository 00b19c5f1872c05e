"""Benchmark live replay: webhook to ledger row under steady ingest, with the settle window.

    python -m benchmarks.bench_live [--rate 250] [--seconds 60] [--customers 200] [--workers 2] [--settle 5]

gunicorn serves the webhook, `worker.py` processes (RQ, with the scheduler for settle delays) replay, and a
separate load process posts signed `customer.updated` events (each one a BillingInfoUpdated row) at a
fixed rate across the customers. Latency = the row's created_at − the event's received_at. Writes to a
scratch database on the server of DATABASE_URL; Redis database 12 of REDIS_URL's server (emptied).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from redis import Redis

from benchmarks.bench_webhook import free_port, run_load
from benchmarks.common import scratch_database

SECRET = "whsec_benchmark"
ROOT = Path(__file__).resolve().parent.parent


def event(index: int, customers: int, start: int) -> bytes:
    customer = index % customers
    return json.dumps({
        "id": f"evt_live_{index:08d}", "object": "event", "api_version": "2025-03-31.basil",
        "created": start + index, "type": "customer.updated", "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {"id": f"cus_live_{customer}", "object": "customer", "email": f"billing{index}@example.com",
                            "name": f"Customer {customer}", "metadata": {"tenant_id": f"ten_live_{customer}"}},
                 "previous_attributes": {"email": f"billing{index - customers}@example.com"}},
    }).encode()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=250)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument("--settle", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    options = parser.parse_args()
    Redis.from_url(options.redis).flushdb()

    with scratch_database() as url:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        env = {**os.environ, "DATABASE_URL": dsn, "REDIS_URL": options.redis, "STRIPE_WEBHOOK_SECRETS": SECRET,
               "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING", "SETTLE_SECONDS": str(options.settle),
               "STRIPE_SECRET_KEY": "", "STRIPE_API_BASE": ""}
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi:app", "db", "upgrade"], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        with psycopg.connect(dsn) as conn:
            conn.cursor().executemany("INSERT INTO tenants (id, name, country, plan) VALUES (%s, %s, 'DK', 'basis')",
                                      [(f"ten_live_{i}", f"Live {i}") for i in range(options.customers)])
        port = free_port()
        processes = [subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "-b", f"127.0.0.1:{port}", "-w", "2", "-k", "gthread",
             "--threads", "8", "--log-level", "warning"], env=env, cwd=ROOT)]
        processes += [subprocess.Popen([sys.executable, "worker.py"], env=env, cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for _ in range(options.workers)]
        try:
            time.sleep(3)
            total = int(options.rate * options.seconds)
            bodies = [event(i, options.customers, int(time.time())) for i in range(total)]
            seconds, results = run_load(port, bodies, 16, rate=options.rate)
            print(f"ingest: {total} events in {seconds:.1f} s ({total / seconds:.0f}/s), "
                  f"{options.customers} customers, {options.workers} RQ workers, settle {options.settle} s")
            deadline = time.time() + 300
            with psycopg.connect(dsn) as conn:
                while time.time() < deadline:
                    pending = conn.execute("SELECT count(*) FROM stripe_event_states WHERE status = 'pending'").fetchone()[0]
                    conn.commit()
                    if pending == 0:
                        break
                    time.sleep(1)
                latencies = [row[0] for row in conn.execute(
                    "SELECT extract(epoch FROM b.created_at - e.received_at) FROM billing_events b "
                    "JOIN stripe_events e ON e.id = b.stripe_event_id")]
                rows = len(latencies)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait()
    Redis.from_url(options.redis).flushdb()
    print(f"ledger rows: {rows} of {total} events; pending left: {pending}")
    print(f"webhook → ledger row: p50 {percentile(latencies, 0.5):.2f} s  p95 {percentile(latencies, 0.95):.2f} s  "
          f"p99 {percentile(latencies, 0.99):.2f} s  max {max(latencies, default=float('nan')):.2f} s "
          f"(target p95 < 10 s)")


if __name__ == "__main__":
    main()
