"""Benchmark outages of the whole stack under a steady stream of signed webhooks.

    python -m benchmarks.bench_outage [--outage 60] [--rate 10] [--before 30] [--after 30] [--only pg,redis,freeze]

Starts its own throwaway PostgreSQL and Redis on free loopback ports (never the machine's shared ones), the
Stripe sandbox (`flask sandbox serve`), and the Procfile's processes: gunicorn on wsgi:app, `python worker.py`
and `python worker.py --scheduler`. A separate load process posts signed `customer.updated` events at `--rate`
per second for the whole of each scenario:

- pg:     PostgreSQL stopped (`pg_ctl stop -m fast`) for `--outage` seconds, then started again;
- redis:  Redis stopped for `--outage` seconds, then started again, empty (`--save ''`), as after a crash;
- freeze: Redis frozen with SIGSTOP for `--outage` seconds, then SIGCONT.

For each: the answers (200 / 503 / other, 0 = no answer) before, during and after the fault; events
acknowledged but not archived (lost) and events refused but archived; the seconds from the fault's end until no
event received before it is pending (the backlog), and until nothing at all is pending once the load stops;
webhook p50/p99 of the requests sent during the fault and how many of them were answered within it; and
whether the worker and the scheduler are still alive afterwards (a dead one is restarted for the next
scenario). The issue's targets: backlog drained < 30 s, webhook p99 < 100 ms with Redis frozen.
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from benchmarks.bench_live import event, percentile
from benchmarks.bench_webhook import SECRET, signed
from tests.throwaway_servers import ThrowawayPostgres, ThrowawayRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_KEY = "sk_test_sandbox"
# Every scenario's events get ids of their own: evt_live_<scenario × this + n>.
SCENARIO_SPAN = 10_000_000
CATCH_UP_DEADLINE = 300


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {seconds} s")


def stream(port: int, rate: float, first: int, customers: int, clients: int, stop, queue) -> None:
    """The load process: post events first, first + 1, … at `rate` per second until `stop` is set.

    Reports [(index, sent at (epoch seconds), status, latency seconds)]; status 0 is no answer (refused
    connection or the 30 s timeout, which is about what Stripe waits).
    """
    results: list = []
    lock = threading.Lock()
    counter = iter(range(first, first + SCENARIO_SPAN))
    began = time.perf_counter()
    created = int(time.time()) - first  # `created` is the posting time, whatever the index

    def worker() -> None:
        while not stop.is_set():
            with lock:
                index = next(counter)
            delay = began + (index - first) / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if stop.is_set():
                break
            body = event(index, customers, created)
            sent, sent_at = time.perf_counter(), time.time()
            # A connection per delivery, as Stripe's are: at a few per second a kept-alive one would idle past
            # gunicorn's 2 s keep-alive and be closed under the next request, which would count as no answer.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request("POST", "/webhooks/stripe", body=body, headers=signed(body))
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
            finally:
                connection.close()
            results.append((index, sent_at, status, time.perf_counter() - sent))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(results)


@dataclass
class Stack:
    """The throwaway servers and the Procfile's processes, with their logs under one folder."""

    customers: int
    settle: int
    postgres: ThrowawayPostgres = field(default_factory=ThrowawayPostgres)
    redis: ThrowawayRedis = field(default_factory=ThrowawayRedis)
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-outage-")))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    web_port: int = 0

    @property
    def dsn(self) -> str:
        return self.postgres.url("backoffice")

    def start(self) -> None:
        self.postgres.start()
        self.postgres.create_database("backoffice")
        self.redis.start()
        sandbox_port = free_port()
        self.web_port = free_port()
        self.env = {**os.environ, "DATABASE_URL": self.dsn, "REDIS_URL": self.redis.url, "SECRET_KEY": "bench",
                    "STRIPE_WEBHOOK_SECRETS": SECRET, "STRIPE_SECRET_KEY": SANDBOX_KEY,
                    "STRIPE_API_BASE": f"http://127.0.0.1:{sandbox_port}", "LOG_LEVEL": "WARNING",
                    "SETTLE_SECONDS": str(self.settle), "SESSION_COOKIE_SECURE": "false"}
        for variable in ("MIGRATION_DATABASE_URL", "BACKOFFICE_DEV_LOGIN", "TRUST_PROXY_HEADERS"):
            self.env.pop(variable, None)
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi:app", "db", "upgrade"], env=self.env, cwd=ROOT,
                       check=True, capture_output=True)
        with psycopg.connect(self.dsn) as conn:
            conn.cursor().executemany("INSERT INTO tenants (id, name, country, plan) VALUES (%s, %s, 'DK', 'basis')",
                                      [(f"ten_live_{i}", f"Live {i}") for i in range(self.customers)])
        self.spawn("sandbox", [sys.executable, "-m", "flask", "--app", "wsgi:app", "sandbox", "serve",
                               "--port", str(sandbox_port), "--secret-key", SANDBOX_KEY])
        wait_for_port(sandbox_port)
        # As the Procfile runs them.
        self.spawn("web", [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{self.web_port}",
                           "--workers", "2", "--worker-class", "gthread", "--threads", "16"])
        self.spawn("worker", [sys.executable, "worker.py"])
        self.spawn("scheduler", [sys.executable, "worker.py", "--scheduler"])
        wait_for_port(self.web_port)

    def spawn(self, name: str, command: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.commands[name] = command

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def revive(self, name: str) -> None:
        self.spawn(name, self.commands[name])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.redis.destroy()
        self.postgres.destroy()


def pending(dsn: str, received_before: float | None = None) -> int | None:
    """Count the pending events (received before an epoch time, if given); None while PostgreSQL is away."""
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            if received_before is None:
                return conn.execute("SELECT count(*) FROM stripe_event_states WHERE status = 'pending'").fetchone()[0]
            return conn.execute("SELECT count(*) FROM stripe_events JOIN stripe_event_states ON stripe_event_id = id "
                                "WHERE status = 'pending' AND received_at <= to_timestamp(%s)",
                                (received_before,)).fetchone()[0]
    except psycopg.OperationalError:
        return None


def seconds_until_nothing_pending(dsn: str, since: float, received_before: float | None) -> float | None:
    """Poll until no event (received before `received_before`) is pending; seconds from `since`, None at deadline."""
    while time.time() < since + CATCH_UP_DEADLINE:
        if pending(dsn, received_before) == 0:
            return time.time() - since
        time.sleep(0.25)
    return None


@dataclass
class Outcome:
    name: str
    answers: dict[str, dict[str, int]]
    lost: int
    refused_but_stored: int
    backlog_seconds: float | None
    drained_seconds: float | None
    fault_p50_ms: float
    fault_p99_ms: float
    answered_in_fault: int
    sent_in_fault: int
    worker_alive: bool
    scheduler_alive: bool


def bucket(status: int) -> str:
    return "200" if status == 200 else "503" if status == 503 else "other"


def run_scenario(stack: Stack, number: int, name: str, fault, recover, options) -> Outcome:
    stop = multiprocessing.Event()
    queue: multiprocessing.Queue = multiprocessing.Queue()
    first = number * SCENARIO_SPAN
    load = multiprocessing.Process(target=stream, args=(stack.web_port, options.rate, first, options.customers,
                                                        options.clients, stop, queue))
    load.start()
    time.sleep(options.before)
    fault_at = time.time()
    fault()
    time.sleep(options.outage)
    recover()
    back_at = time.time()
    backlog = seconds_until_nothing_pending(stack.dsn, back_at, back_at)
    remaining = back_at + options.after - time.time()
    if remaining > 0:
        time.sleep(remaining)
    stop.set()
    results = queue.get()
    load.join()
    load_ended = time.time()
    drained = seconds_until_nothing_pending(stack.dsn, load_ended, None)

    answers = {phase: {"200": 0, "503": 0, "other": 0} for phase in ("before", "during", "after")}
    for _index, sent_at, status, _latency in results:
        phase = "before" if sent_at < fault_at else "during" if sent_at < back_at else "after"
        answers[phase][bucket(status)] += 1
    acknowledged = [f"evt_live_{index:08d}" for index, _, status, _ in results if status == 200]
    refused = [f"evt_live_{index:08d}" for index, _, status, _ in results if status not in (200, 0)]
    with psycopg.connect(stack.dsn) as conn:
        stored_acknowledged = conn.execute("SELECT count(*) FROM stripe_events WHERE id = ANY(%s)",
                                           (acknowledged,)).fetchone()[0]
        refused_but_stored = conn.execute("SELECT count(*) FROM stripe_events WHERE id = ANY(%s)",
                                          (refused,)).fetchone()[0]
    in_fault = [(sent_at, status, latency) for _, sent_at, status, latency in results if fault_at <= sent_at < back_at]
    latencies = [latency for _, status, latency in in_fault if status != 0]
    outcome = Outcome(
        name=name, answers=answers, lost=len(acknowledged) - stored_acknowledged,
        refused_but_stored=refused_but_stored,
        backlog_seconds=backlog, drained_seconds=drained,
        fault_p50_ms=percentile(latencies, 0.50) * 1000, fault_p99_ms=percentile(latencies, 0.99) * 1000,
        answered_in_fault=sum(1 for sent_at, status, latency in in_fault if status != 0 and sent_at + latency < back_at),
        sent_in_fault=len(in_fault),
        worker_alive=stack.alive("worker"), scheduler_alive=stack.alive("scheduler"))
    for process in ("worker", "scheduler"):
        if not stack.alive(process):
            stack.revive(process)
    return outcome


def seconds(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else f"> {CATCH_UP_DEADLINE}"


def answers_cell(counts: dict[str, int]) -> str:
    return f"{counts['200']}/{counts['503']}/{counts['other']}"


def print_table(outcomes: list[Outcome]) -> None:
    header = ("scenario", "before 200/503/other", "during", "after", "lost", "refused+stored", "backlog s",
              "drained s", "fault p50 ms", "fault p99 ms", "answered in fault", "worker", "scheduler")
    rows = [header]
    for o in outcomes:
        rows.append((o.name, answers_cell(o.answers["before"]), answers_cell(o.answers["during"]),
                     answers_cell(o.answers["after"]), str(o.lost), str(o.refused_but_stored),
                     seconds(o.backlog_seconds), seconds(o.drained_seconds), f"{o.fault_p50_ms:.0f}",
                     f"{o.fault_p99_ms:.0f}", f"{o.answered_in_fault} of {o.sent_in_fault}",
                     "alive" if o.worker_alive else "DIED", "alive" if o.scheduler_alive else "DIED"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage", type=int, default=60, help="seconds each fault lasts")
    parser.add_argument("--rate", type=float, default=10, help="webhooks per second, all the time")
    parser.add_argument("--before", type=int, default=30, help="seconds of load before the fault")
    parser.add_argument("--after", type=int, default=30, help="seconds of load after the fault ends")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--clients", type=int, default=48, help="connections of the load process")
    parser.add_argument("--settle", type=int, default=5, help="SETTLE_SECONDS of the stack")
    parser.add_argument("--only", default="pg,redis,freeze", help="scenarios to run, comma-separated")
    options = parser.parse_args()
    chosen = [name.strip() for name in options.only.split(",") if name.strip()]

    stack = Stack(customers=options.customers, settle=options.settle)
    scenarios = {
        "pg": ("PostgreSQL stopped", stack.postgres.stop, stack.postgres.start),
        "redis": ("Redis stopped", stack.redis.stop, stack.redis.start),
        "freeze": ("Redis frozen (SIGSTOP)", stack.redis.freeze, stack.redis.thaw),
    }
    unknown = set(chosen) - set(scenarios)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    outcomes = []
    try:
        stack.start()
        print(f"stack: PostgreSQL :{stack.postgres.port}, Redis :{stack.redis.port}, gunicorn :{stack.web_port} "
              f"(2 × 16 gthread, as the Procfile), worker, scheduler, sandbox; logs in {stack.logs}")
        print(f"load: {options.rate:g} signed webhooks/s over {options.customers} customers; "
              f"{options.before} s before, {options.outage} s fault, {options.after} s after; settle {options.settle} s")
        for number, name in enumerate(chosen, start=1):
            title, fault, recover = scenarios[name]
            outcome = run_scenario(stack, number, title, fault, recover, options)
            outcomes.append(outcome)
            print(f"{title}: backlog drained {seconds(outcome.backlog_seconds)} s after it ended, "
                  f"answers during {answers_cell(outcome.answers['during'])}", flush=True)
    finally:
        stack.stop()
    print()
    print_table(outcomes)
    print()
    print("answers: 200/503/other (0 = no answer within 30 s) by when the request was sent; lost = answered 200 but "
          "not archived; refused+stored = answered 4xx/5xx but archived; backlog s = from the fault's end until no "
          "event received before it is pending (target < 30); drained s = from the load's end until nothing is "
          "pending; fault p50/p99 = webhook latency of requests sent during the fault (target p99 < 100 ms with "
          "Redis frozen)")


if __name__ == "__main__":
    main()
