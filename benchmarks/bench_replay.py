"""Benchmark `flask billing replay --all`: a large archive replayed into the ledger on one worker.

    python -m benchmarks.bench_replay [--tenants 1000] [--months 24] [--copies 10] [--template NAME] [--fingerprint]
                                      [--processes N] [--without-account-months-triggers] [--without-writes]
                                      [--kill-every SECONDS] [--redis URL]

The archive comes from the demo generator (the sandbox in this process, no webhooks), then is copied
`--copies` times under fresh ids (customers, tenants, events, invoices, charges), so that 1,000 tenants
× 24 months × 10 copies gives roughly half a million events without an hour of generation. Events are
COPYed in as pending, as the webhook leaves them; the replay then runs exactly as the CLI runs it.
Prints events per second and the peak memory of this process and of the largest replay shard.

`--processes N` replays over N processes (customers dealt by a hash of their id, `replay --all --processes N`);
default: the usable CPUs. `--without-account-months-triggers` switches off the statement triggers that keep
`account_months` (migration 0018) on the scratch database only, to measure what they cost the replay.
`--without-writes` measures a ceiling instead of the replay: every process skips the batch write (ledger rows,
payments, events' states; `replay_ceiling/sitecustomize.py`), so that what is left (reading and parsing the
archive, linking, the rules, the payment fold, the projection) is timed alone.

`--template NAME` keeps the loaded, still pending archive as database NAME and, when NAME exists, replays a
clone of it instead of generating: the run is then replay-only, so its peak RSS is the replay's own (drop
NAME when done). `--fingerprint` prints digests of what the replay wrote, minus its random ids and clocks,
to compare two versions of the replayer on the same archive.

`--kill-every SECONDS` replays the production way instead, and unkindly: one replay per customer queued on Redis
(`--redis`, emptied before and after), `worker.py --burst` as a subprocess, SIGKILLed SECONDS after it starts
making progress and restarted, again and again, then left to finish (the pending sweeper re-queues what a kill
lost). A clean in-process `replay --all` of a clone of the same archive follows; `flask billing verify` must be
clean on the killed run's books and every table's fingerprint equal to the clean run's.
tests/billing/test_worker_sigkill.py runs the same function, at test size.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import re
import resource
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backoffice.billing.intake.webhook import read_envelope
from backoffice.billing.replay.tasks import replay_all, replay_platform_events, sweep_pending
from backoffice.demo.generator import MONTH, DatasetBuilder, plan_tenants
from backoffice.demo.stripe_demo import StripeDemo
from backoffice.dev import create_app
from backoffice.extensions import db
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from benchmarks.common import as_runtime_role, scratch_database

ROOT = Path(__file__).resolve().parent.parent

# Ids that must stay unique per copy; the prefix stays so that ids still look like Stripe's.
COPIED_IDS = re.compile(r'"(evt|cus|in|ch|re|cn|py|inpay|pi|pm|sub|sub_sched|di|si|ten)_')


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_shard_mib() -> float:
    """The peak RSS of the largest child process waited for so far (the replay's shards)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


class BackendCpu(threading.Thread):
    """The CPU seconds PostgreSQL's backends spend on one database, sampled from /proc while the replay runs.

    The machine is shared: wall-clock events/s move with whatever else runs, CPU seconds per event much less.
    """

    def __init__(self, uri: str, interval: float = 0.25):
        super().__init__(name="backend-cpu", daemon=True)
        url = make_url(uri)
        self.database = url.database
        self.admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        self.interval = interval
        self.seen: dict[int, float] = {}
        self.stopping = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            while not self.stopping.is_set():
                self.sample(conn)
                self.stopping.wait(self.interval)
            self.sample(conn)

    def sample(self, conn: psycopg.Connection) -> None:
        pids = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                               (self.database,))]
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone, or not on this machine
            self.seen[pid] = max(self.seen.get(pid, 0.0), (int(fields[11]) + int(fields[12])) / self.tick)

    def stop(self) -> float:
        self.stopping.set()
        self.join()
        return sum(self.seen.values())


def python_cpu() -> float:
    """CPU seconds of this process and of its children waited for (the replay's shards)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


ACCOUNT_MONTHS_TRIGGERS = (("billing_events", "billing_events_account_months"),
                           ("billing_event_corrections", "billing_event_corrections_account_months"))


def disable_account_months_triggers() -> None:
    """Switch off migration 0018's statement triggers on this (scratch) database: the owner's right, as the bench."""
    for table, trigger in ACCOUNT_MONTHS_TRIGGERS:
        db.session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
    db.session.commit()


def without_writes() -> None:
    """Skip the replay's batch write here and in every shard process this one starts (they import the folder's
    sitecustomize at start-up)."""
    ceiling = Path(__file__).with_name("replay_ceiling")
    os.environ["BENCH_REPLAY_WITHOUT_WRITES"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ceiling), os.environ.get("PYTHONPATH")]))
    runpy.run_path(str(ceiling / "sitecustomize.py"))


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
                             "stripe_subscription_id, payload, payload_hash) FROM STDIN") as feed:
                for event in events:
                    raw = COPIED_IDS.sub(lambda match, c=copy: f'"{match.group(1)}_c{c}', event).encode()
                    envelope = read_envelope(raw)
                    feed.write_row((envelope.id, envelope.created, envelope.type, envelope.api_version,
                                    envelope.customer_id, envelope.subscription_id, raw.decode(),
                                    hashlib.sha256(raw).hexdigest()))
                    count += 1
    db.session.commit()
    return count


def analyze_archive() -> None:
    """Give the planner the archive's statistics, as autovacuum would have long before a real archive of this size
    is replayed: without them it takes a freshly loaded table for empty (or a default size) and plans the
    replay's per-batch reads as scans of the whole archive."""
    db.session.execute(text("ANALYZE tenants, stripe_events, stripe_event_states"))
    db.session.commit()


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
    # Kept by triggers on what the replay writes; a zero is no row (read_models/revenue_daily.py).
    "revenue_daily": "SELECT r.* FROM revenue_daily r WHERE r.amount <> 0 ORDER BY r.day, r.currency",
    "invoice_rows": "SELECT i.key, i.kind, i.date, i.status, i.amount, i.currency FROM invoice_rows i ORDER BY i.key",
    "archive": "SELECT s.stripe_event_id AS id, s.status, s.error, s.tenant_id FROM stripe_event_states s "
               "ORDER BY s.stripe_event_id",
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


def pending_events(database_url: str) -> int:
    with psycopg.connect(make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM stripe_event_states WHERE status = 'pending'").fetchone()[0]


@dataclass
class KilledReplay:
    """How a replay through workers went: SIGKILLs that landed mid-replay, worker starts, sweeps, seconds."""

    kills: int = 0
    starts: int = 0
    sweeps: int = 0
    seconds: float = 0.0


def replay_through_workers(app: Flask, database_url: str, redis_url: str, *, kill_every: float | None = None,
                           kills: int = 0, seed: int = 1, round_limit: int = 200,
                           worker_args: Sequence[str] = ()) -> KilledReplay:
    """Replay the archive as production does, through `worker.py` on a real Redis queue, killing it on the way.

    The pending sweeper queues one replay per customer with pending events; a burst worker (a subprocess, as the
    Procfile's) drains the queue. Up to `kills` times, `kill_every` seconds (give or take a third, from `seed`)
    after the worker has visibly started replaying, it is SIGKILLed and a new one started. When a burst worker
    ends with events still pending (their job died with a killed worker) the sweeper queues them again, as the
    scheduler's minute sweep would. Returns once nothing is pending. `worker_args`: more options of `worker.py`
    (`--processes 2`: the Procfile's two workers).
    """
    jitter = random.Random(seed)
    environment = {**os.environ, "DATABASE_URL": make_url(database_url).set(drivername="postgresql")
                   .render_as_string(hide_password=False), "REDIS_URL": redis_url, "SECRET_KEY": "replay",
                   "SETTLE_SECONDS": "0", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
    for name in ("MIGRATION_DATABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_API_BASE"):
        environment.pop(name, None)
    outcome = KilledReplay()
    began = time.perf_counter()
    with app.app_context():
        sweep_pending(0)
    for _ in range(round_limit):
        before = pending_events(database_url)
        if before == 0:
            break
        with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a full pipe would stall the worker
            worker = subprocess.Popen([sys.executable, "worker.py", "--burst", *worker_args], cwd=ROOT, env=environment,
                                      stdout=subprocess.DEVNULL, stderr=errors)
            outcome.starts += 1
            if kill_every and outcome.kills < kills and _replaying(worker, database_url, before):
                try:
                    worker.wait(timeout=kill_every * jitter.uniform(0.67, 1.33))
                except subprocess.TimeoutExpired:
                    worker.send_signal(signal.SIGKILL)
                    outcome.kills += pending_events(database_url) > 0
            try:
                worker.wait(timeout=600)
            except subprocess.TimeoutExpired:
                worker.kill()
                raise
            if worker.returncode not in (0, -signal.SIGKILL):
                errors.seek(0)
                raise RuntimeError(f"worker.py ended with {worker.returncode}: {errors.read()[-3000:]}")
        if worker.returncode == 0:
            # A burst worker ends on an empty queue: whatever is pending lost its job to a kill.
            with app.app_context():
                sweep_pending(0)
            outcome.sweeps += 1
    else:
        raise RuntimeError(f"{pending_events(database_url)} events still pending after {round_limit} worker runs")
    outcome.seconds = time.perf_counter() - began
    return outcome


def _replaying(worker: subprocess.Popen, database_url: str, before: int, timeout: float = 60) -> bool:
    """Wait until the worker has replayed something (its start-up is not what a kill should land on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        if pending_events(database_url) < before:
            return True
        time.sleep(0.02)
    return False


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


def replay_killed(app: Flask, uri: str, total: int, options: argparse.Namespace) -> None:
    """The --kill-every run: workers killed on the way on this archive, a clean replay on a clone, compared."""
    from redis import Redis

    # Catalog events first, as `replay --all` does, so that both runs price every customer alike.
    replay_platform_events()
    db.session.remove()
    db.engine.dispose()
    clean_uri = clone_database(uri, "clean")
    # The workers connect as the app's runtime role (migration 0016 granted it this database), as in production.
    worker_uri = as_runtime_role(uri)
    queue = Redis.from_url(options.redis)
    queue.flushdb()
    try:
        killed_app = create_app({"LOG_LEVEL": "WARNING", "SQLALCHEMY_DATABASE_URI": uri, "SETTLE_SECONDS": 0,
                                 "REDIS_URL": options.redis, "STRIPE_SECRET_KEY": None, "STRIPE_API_BASE": None})
        run = replay_through_workers(killed_app, worker_uri, options.redis, kill_every=options.kill_every,
                                     kills=options.kills, seed=options.seed)
        print(f"replay through worker.py as {make_url(worker_uri).username}, SIGKILLed {run.kills} times mid-replay "
              f"(every ~{options.kill_every:g} s of work), {run.starts} worker starts, {run.sweeps} sweeps: "
              f"{run.seconds:.1f} s, {total / run.seconds:,.0f} events/s")
        verified = killed_app.test_cli_runner().invoke(args=["billing", "verify"])
        print(f"  verify: exit {verified.exit_code}, {verified.output.strip().splitlines()[-1]}")
        with killed_app.app_context():
            killed = fingerprint()
            db.engine.dispose()
        clean_app = create_app({"LOG_LEVEL": "WARNING", "SQLALCHEMY_DATABASE_URI": clean_uri, "SETTLE_SECONDS": 0,
                                "REDIS_URL": None, "STRIPE_SECRET_KEY": None, "STRIPE_API_BASE": None})
        with clean_app.app_context():
            began = time.perf_counter()
            replay_all()
            print(f"clean replay --all of a clone in-process: {time.perf_counter() - began:.1f} s")
            clean = fingerprint()
            db.engine.dispose()
        for name in FINGERPRINTS:
            print(f"  {name:<14} {'same' if killed[name] == clean[name] else 'DIFFERENT'}  {killed[name]}"
                  + ("" if killed[name] == clean[name] else f" (clean: {clean[name]})"))
        print("killed run = clean run, table by table" if killed == clean else "the runs DIFFER")
    finally:
        queue.flushdb()
        drop_database(clean_uri)


def clone_database(uri: str, suffix: str) -> str:
    """Copy database `uri` (nobody connected) to `<name>_<suffix>` beside it; return the copy's URL."""
    url = make_url(uri)
    name = f"{url.database}_{suffix}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(uri: str) -> None:
    url = make_url(uri)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--template", help="database keeping the loaded archive, reused when it exists")
    parser.add_argument("--fingerprint", action="store_true", help="print digests of what the replay wrote")
    parser.add_argument("--processes", type=int, help="processes sharing the replay (default: the usable CPUs)")
    parser.add_argument("--without-account-months-triggers", action="store_true",
                        help="switch off the account_months triggers on the scratch database (to measure their cost)")
    parser.add_argument("--without-writes", action="store_true",
                        help="skip the replay's batch write in every process: a ceiling, not the replay (see above)")
    parser.add_argument("--kill-every", type=float, metavar="SECONDS",
                        help="replay through worker.py on Redis, SIGKILLing it this often (see above)")
    parser.add_argument("--kills", type=int, default=10, help="how many SIGKILLs with --kill-every")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14",
                        help="the queue of --kill-every's workers (emptied before and after)")
    options = parser.parse_args()
    logging.getLogger("stripe").setLevel(logging.WARNING)

    with scratch_database() as uri:
        app = create_app({"LOG_LEVEL": "WARNING", "SQLALCHEMY_DATABASE_URI": uri, "MIGRATION_DATABASE_URI": uri,
                          "SETTLE_SECONDS": 0, "REDIS_URL": None, "STRIPE_SECRET_KEY": None, "STRIPE_API_BASE": None})
        with app.app_context():
            if options.template and from_template(uri, options.template):
                from flask_migrate import upgrade

                upgrade()  # a template kept before the newest migration is brought up to date, outside the timing
                analyze_archive()
                total = db.session.scalar(text("SELECT count(*) FROM stripe_event_states WHERE status = 'pending'"))
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
                analyze_archive()
                del events
                print(f"archive: {total} pending events ({options.copies} copies) COPYed in "
                      f"{time.perf_counter() - loading:.1f} s; peak RSS so far {peak_mib():.0f} MiB")
                if options.template:
                    save_template(uri, options.template)
            if options.kill_every:
                replay_killed(app, uri, total, options)
                db.engine.dispose()
                return
            if options.without_account_months_triggers:
                disable_account_months_triggers()
                print("account_months triggers DISABLED on the scratch database")
            if options.without_writes:
                without_writes()
                print("WITHOUT WRITES: no ledger rows, payments or events' states are written; a ceiling, not the "
                      "replay")
            backends = BackendCpu(uri)
            backends.start()
            cpu_before = python_cpu()
            replaying = time.perf_counter()
            totals = replay_all(processes=options.processes)
            seconds = time.perf_counter() - replaying
            python_seconds, postgres_seconds = python_cpu() - cpu_before, backends.stop()
            print(f"replay --all: {totals}")
            print(f"  {seconds:.1f} s, {total / seconds:,.0f} events/s over {totals['processes']} process(es) "
                  f"(target: 10,000/s over two); peak RSS {peak_mib():.0f} MiB here"
                  + (f", {peak_shard_mib():.0f} MiB the largest shard" if totals["processes"] > 1 else "")
                  + f", at {datetime.now(UTC):%H:%M:%S}")
            per_event = (python_seconds + postgres_seconds) / total
            print(f"  CPU {python_seconds:.1f} s Python + {postgres_seconds:.1f} s PostgreSQL = "
                  f"{per_event * 1e6:.0f} µs per event: at most {os.cpu_count() / per_event:,.0f} events/s on "
                  f"{os.cpu_count()} idle cores; load average {os.getloadavg()[0]:.1f} at the end")
            if options.fingerprint:
                for name, digest in fingerprint().items():
                    print(f"  fingerprint {name}: {digest}")
            db.engine.dispose()


if __name__ == "__main__":
    main()
