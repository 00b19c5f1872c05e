"""Benchmark the Stripe webhook under gunicorn on loopback, with load from a separate process.

    python -m benchmarks.bench_webhook [--workers 2] [--threads 16] [--events 6000] [--burst 20000]

Phases: sustained throughput (as fast as the client threads go), latency at a fixed 250 events/s, and a
burst with 20 % re-sends, after which the archive must hold each event exactly once. Payloads are signed
~3 KB invoice events. The server writes to a scratch database on the server of DATABASE_URL (or the
embedded PostgreSQL), dropped afterwards.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from backoffice.billing.intake.replay_requests import REQUESTED
from benchmarks.common import as_runtime_role, scratch_database

SECRET = "whsec_benchmark"
ROOT = Path(__file__).resolve().parent.parent


def payload(index: int, run: str) -> bytes:
    """Return a signed-size (~3 KB) basil-shaped invoice.paid event."""
    lines = [{"id": f"il_{run}_{index}_{n}", "object": "line_item", "amount": 4900, "currency": "eur",
              "description": "1 × Standard (at €49.00 / month)", "period": {"start": 1767225600, "end": 1769904000},
              "pricing": {"price_details": {"price": "price_standard_month", "product": "prod_standard"}},
              "taxes": [{"amount": 1225, "tax_behavior": "exclusive", "taxable_amount": 4900}]} for n in range(7)]
    event = {"id": f"evt_{run}_{index:08d}", "object": "event", "api_version": "2025-03-31.basil",
             "created": 1767225600 + index, "type": "invoice.paid", "livemode": False, "pending_webhooks": 1,
             "request": {"id": None, "idempotency_key": None},
             "data": {"object": {"id": f"in_{run}_{index}", "object": "invoice", "customer": f"cus_{index % 5000}",
                                 "currency": "eur", "total": 6125, "amount_paid": 6125, "status": "paid",
                                 "parent": {"type": "subscription_details",
                                            "subscription_details": {"subscription": f"sub_{index % 5000}"}},
                                 "lines": {"object": "list", "data": lines, "has_more": False}}}}
    return json.dumps(event).encode()


def signed(body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={digest}"}


def send_all(port: int, bodies: list[bytes], threads: int, rate: float | None, results: list) -> None:
    """Post bodies from `threads` keep-alive connections, optionally paced to `rate` per second in total."""
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    start = time.perf_counter()

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            if rate:
                delay = start + index / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            sent = time.perf_counter()
            try:
                connection.request("POST", "/webhooks/stripe", body=bodies[index], headers=signed(bodies[index]))
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            results.append((status, time.perf_counter() - sent))
        connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def load(port: int, bodies: list[bytes], threads: int, rate: float | None, queue: multiprocessing.Queue) -> None:
    """The load generator's process: send and report (wall seconds, [(status, latency)])."""
    results: list = []
    began = time.perf_counter()
    send_all(port, bodies, threads, rate, results)
    queue.put((time.perf_counter() - began, results))


def run_load(port: int, bodies: list[bytes], threads: int, rate: float | None = None) -> tuple[float, list]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=load, args=(port, bodies, threads, rate, queue))
    process.start()
    outcome = queue.get()
    process.join()
    return outcome


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] * 1000


def report(name: str, seconds: float, results: list) -> None:
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    latencies = [latency for _, latency in results]
    print(f"{name:<28}{len(results) / seconds:>8.0f}/s  p50 {percentile(latencies, 50):6.1f} ms  "
          f"p95 {percentile(latencies, 95):6.1f} ms  p99 {percentile(latencies, 99):6.1f} ms  statuses {statuses}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16, help="gunicorn gthread threads per worker")
    parser.add_argument("--clients", type=int, default=16, help="client connections of the load process")
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--burst", type=int, default=20000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13",
                        help="where the webhook queues replays (emptied before and after; no worker drains it)")
    options = parser.parse_args()
    from redis import Redis

    queue = Redis.from_url(options.redis)
    queue.flushdb()

    with scratch_database() as url:
        # Migrated as the owner, served as the app's runtime role (migration 0016), as the Procfile runs them.
        env = {**os.environ, "DATABASE_URL": as_runtime_role(url).replace("postgresql+psycopg://", "postgresql://"),
               "MIGRATION_DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
               "STRIPE_WEBHOOK_SECRETS": SECRET, "LOG_LEVEL": "WARNING", "SECRET_KEY": "bench",
               "REDIS_URL": options.redis}
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi:app", "db", "upgrade"], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "-b", f"127.0.0.1:{port}", "-w", str(options.workers),
             "-k", "gthread", "--threads", str(options.threads), "--log-level", "warning"],
            env=env, cwd=ROOT)
        try:
            for _ in range(100):
                try:
                    http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                    break
                except OSError:
                    time.sleep(0.1)
            print(f"gunicorn: {options.workers} workers × {options.threads} threads (gthread); "
                  f"payload {len(payload(0, 'x'))} bytes; load from a separate process, {options.clients} connections")
            report("sustained", *run_load(port, [payload(i, "s") for i in range(options.events)], options.clients))
            report("fixed 250/s", *run_load(port, [payload(i, "f") for i in range(2500)], options.clients, rate=250))
            unique = [payload(i, "b") for i in range(options.burst)]
            resent = random.Random(1).sample(unique, options.burst // 5)
            burst = unique + resent
            random.Random(2).shuffle(burst)
            seconds, results = run_load(port, burst, options.clients)
            report(f"burst {len(unique)} + 20 % re-sent", seconds, results)
        finally:
            server.terminate()
            server.wait()
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            stored, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT id) FROM stripe_events WHERE id LIKE 'evt_b_%'").fetchone()
        lost = options.burst - distinct
        print(f"burst archive: {stored} rows, {distinct} distinct, lost {lost}, stored twice {stored - distinct}")
        # The intake records the customers to replay in one set and queues one drain job (no worker runs here).
        print(f"replays asked for: {queue.scard(REQUESTED)} customers recorded, "
              f"{queue.llen('rq:queue:high')} drain job queued")
    queue.flushdb()


if __name__ == "__main__":
    main()
