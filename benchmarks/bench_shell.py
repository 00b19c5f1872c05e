"""Benchmark the request path every page shares: proxy identity, operator upsert, shell render.

    python -m benchmarks.bench_shell [--requests N]

Uses DATABASE_URL when set, else the embedded PostgreSQL (migrated first). Prints throughput,
latency percentiles and peak memory of the serving process.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time

from backoffice.dev import create_app
from backoffice.operators.identity import encode_principal


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def measure(client, path: str, headers: dict[str, str], requests: int) -> dict[str, float]:
    for _ in range(20):  # warm caches, templates and the connection pool
        client.get(path, headers=headers)
    timings = []
    started = time.perf_counter()
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
    elapsed = time.perf_counter() - started
    return {"rps": requests / elapsed, "p50": percentile(timings, 50), "p95": percentile(timings, 95),
            "p99": percentile(timings, 99), "mean": statistics.fmean(timings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    options = parser.parse_args()
    app = create_app({"TRUST_PROXY_HEADERS": True, "LOG_LEVEL": "WARNING", "BACKOFFICE_ADMINS_GROUP_ID": "admins",
                      "PUBLIC_SUBSCRIPTION_ENABLED": True})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    headers = {"X-MS-CLIENT-PRINCIPAL-NAME": "bench@example.com",
               "X-MS-CLIENT-PRINCIPAL": encode_principal([("groups", "admins"), ("name", "Bench")])}
    client = app.test_client()
    print(f"requests per path: {options.requests} (sequential, in-process WSGI, one operator)")
    print(f"{'path':<12}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for path, path_headers in (("/healthz", {}), ("/", headers), ("/accounts", {**headers, "HX-Request": "true"})):
        figures = measure(client, path, path_headers, options.requests)
        print(f"{path:<12}{figures['rps']:>10.0f}{figures['p50']:>10.2f}{figures['p95']:>10.2f}{figures['p99']:>10.2f}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
