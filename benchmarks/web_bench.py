"""What the benchmarks of the web surfaces share: a loaded app, an operator's headers, timed requests, a report."""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask

from backoffice.dev import create_app
from backoffice.extensions import db
from backoffice.operators.identity import encode_principal
from benchmarks.bench_shell import percentile
from benchmarks.common import kept_database, scratch_database

HEADERS = {"X-MS-CLIENT-PRINCIPAL-NAME": "bench@example.com",
           "X-MS-CLIENT-PRINCIPAL": encode_principal([("groups", "admins"), ("name", "Bench")])}
PARTIAL = {**HEADERS, "HX-Request": "true"}


def arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add the options every web benchmark takes (--requests, --keep) and parse the command line."""
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", metavar="DATABASE", help="load into this database once, keep it, and reuse it")
    return parser.parse_args()


@contextmanager
def loaded_app(keep: str | None, table: str, load: Callable[[], dict[str, int]]) -> Iterator[tuple[Flask, str]]:
    """Yield an app on a scratch (or kept) database, migrated, with the data `load` makes loaded once — when
    `table` is empty — and vacuumed, and the database's URL."""
    with (kept_database(keep) if keep else scratch_database()) as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TRUST_PROXY_HEADERS": True, "LOG_LEVEL": "WARNING",
                          "PUBLIC_SUBSCRIPTION_ENABLED": True, "BACKOFFICE_ADMINS_GROUP_ID": "admins"})
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            if db.session.execute(db.text(f"SELECT count(*) FROM {table}")).scalar() == 0:
                started = time.perf_counter()
                counts = load()
                print(f"loaded in {time.perf_counter() - started:.0f} s: "
                      + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
                db.session.commit()
                vacuum(url)
        yield app, url


def vacuum(url: str) -> None:
    """Settle the tables as autovacuum would after a load: statistics, and a visibility map for index-only scans."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def timed(client, paths: list[str], headers: dict[str, str]) -> list[float]:
    timings = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.get_data(as_text=True)[:300]}")
    return timings


def report(name: str, timings: list[float], target: float | None) -> None:
    p95 = percentile(timings, 95)
    verdict = "" if target is None else ("  ok" if p95 < target else f"  OVER the {target:.0f} ms target")
    print(f"{name:<38}{len(timings):>6}{percentile(timings, 50):>10.1f}{p95:>10.1f}{max(timings):>10.1f}{verdict}")
