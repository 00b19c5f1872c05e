"""Benchmark the Stripe sandbox through the official SDK over HTTP: events.list on a large log, and calls/s.

    python -m benchmarks.bench_sandbox [--events 500000] [--requests 300] [--sdk-requests 100] [--calls 3000]
                                       [--no-pin]

Targets (issue 3): events.list pages of 100 answer in under 20 ms with 500,000 events stored, and the
sandbox sustains 300 SDK calls/s on one core. The sandbox runs in its own process pinned to one CPU (the
SDK client to another when there is one) unless --no-pin, so the client's work and garbage do not count
against the sandbox. The events are appended straight to the event log, cloned from the events of a real
subscription lifecycle, with `created` spread over the 30 days the API lists.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import resource
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import stripe

from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.events import RETENTION_SECONDS
from backoffice.stripe_sandbox.server import SandboxServer

START = 1767225600  # 2026-01-01T00:00:00Z
SECRET_KEY = SandboxSettings.secret_key  # the default key
TARGET_PAGE_MS = 20.0
TARGET_CALLS_PER_SECOND = 300.0


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def stripe_client(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": url}, max_network_retries=0)


# --- data ------------------------------------------------------------------------------------------------


def lifecycle_events() -> list[dict[str, Any]]:
    """Run a subscription lifecycle in a scratch sandbox and return its events (the templates)."""
    server = SandboxServer(Sandbox(SandboxSettings(currency="EUR", tax_rates={"DK": 25}, seed=1,
                                                   start_time=START - RETENTION_SECONDS))).start()
    try:
        client = stripe_client(server.url)
        customer = client.v1.customers.create(params={"name": "Nordlys ApS", "email": "billing@nordlys.dk",
                                                      "address": {"country": "DK"}})
        method = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
        client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": method.id}})
        cheap, dear = (client.v1.prices.create(params={
            "currency": "eur", "unit_amount": amount, "recurring": {"interval": "month"},
            "product_data": {"name": name}}) for name, amount in (("Standard", 4900), ("Premium", 9900)))
        subscription = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": cheap.id}]})
        client.v1.subscriptions.update(subscription.id, params={
            "items": [{"id": subscription["items"].data[0].id, "price": dear.id}],
            "proration_behavior": "always_invoice"})
        client.raw_request("post", "/v1/test_helpers/sandbox_clock/advance", days=31)
        charge = client.v1.charges.list(params={"customer": customer.id}).data[0]
        client.v1.refunds.create(params={"charge": charge.id, "amount": 500})
        return list(server.sandbox.events.events)
    finally:
        server.stop()


def bench_event_id(index: int) -> str:
    return f"evt_bench{index:015d}"


def fill_event_log(sb: Sandbox, templates: list[dict[str, Any]], count: int, seed: int = 1) -> None:
    """Append `count` events cloned from the templates, `created` spread evenly at random over 30 days.

    Clones share their `data` with the template (stored events are only ever serialised, never changed),
    which keeps half a million events within a few hundred MiB.
    """
    rng = random.Random(seed)
    now = sb.now()
    times = sorted(rng.randint(now - RETENTION_SECONDS + 1, now) for _ in range(count))
    for index, created in enumerate(times):
        template = templates[rng.randrange(len(templates))]
        sb.events.append({**template, "id": bench_event_id(index), "created": created})


# --- measurements ------------------------------------------------------------------------------------------


def form_encode(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Encode nested parameters as Stripe's form keys (`created[lte]=…`, `types[0]=…`)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            pairs.extend(form_encode(value, name))
        elif isinstance(value, list):
            pairs.extend(form_encode(dict(enumerate(value)), name))
        else:
            pairs.append((name, str(value)))
    return pairs


class RawClient:
    """GET requests over one kept-alive connection: the sandbox's answer time, without the SDK's parsing."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {SECRET_KEY}"}

    def get(self, path: str, params: dict[str, Any]) -> bytes:
        self.connection.request("GET", f"{path}?{urlencode(form_encode(params))}", headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}: {body[:200]!r}")
        return body


def timed(call: Callable[[], Any], requests: int) -> list[float]:
    """Return the duration in ms of each of `requests` calls, after a warm-up."""
    for _ in range(10):
        call()
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def page_cases(events: int, seed: int = 2) -> dict[str, Callable[[], dict[str, Any]]]:
    """Return, by label, functions giving the parameters of the events.list requests to time."""
    rng = random.Random(seed)
    # Cursors among the older half of the log: a client walking back that far pages from deep inside it.
    deep = [bench_event_id(rng.randrange(events // 10, events // 2)) for _ in range(64)]
    mid_window = START - 15 * 86400
    return {
        "newest page": lambda: {},
        "type=invoice.paid": lambda: {"type": "invoice.paid"},
        "type=customer.subscription.*": lambda: {"type": "customer.subscription.*"},
        "types[] of 3": lambda: {"types": ["invoice.paid", "charge.succeeded", "customer.updated"]},
        "created[lte] mid-window": lambda: {"created": {"lte": mid_window}},
        "starting_after deep": lambda: {"starting_after": rng.choice(deep)},
        "type + starting_after deep": lambda: {"type": "invoice.paid", "starting_after": rng.choice(deep)},
        "ending_before deep": lambda: {"ending_before": rng.choice(deep)},
    }


def measure_calls(client: stripe.StripeClient, calls: int) -> float:
    """Return SDK calls per second for a loop of customers.create then customers.retrieve."""
    started = time.perf_counter()
    for index in range(calls // 2):
        customer = client.v1.customers.create(params={"name": f"Bench {index}", "metadata": {"n": str(index)}})
        client.v1.customers.retrieve(customer.id)
    return (calls // 2 * 2) / (time.perf_counter() - started)


def print_page_figures(url: str, events: int, requests: int, sdk_requests: int) -> None:
    client, raw = stripe_client(url), RawClient(url)
    page = raw.get("/v1/events", {"limit": 100})
    print(f"\nevents.list, limit=100 ({requests} raw and {sdk_requests} SDK requests per case; a page of the newest events is "
          f"{len(page) / 1024:.0f} KiB of JSON). Answer: raw HTTP until the last byte; SDK: the same through "
          f"stripe {stripe.VERSION}, including its parsing into StripeObjects. Target: answer p99 < "
          f"{TARGET_PAGE_MS:.0f} ms.")
    print(f"{'case':<30}{'answer p50':>11}{'p95':>7}{'p99':>7}{'SDK p50':>10}{'p95':>7}{'p99':>7}")
    for label, params in page_cases(events).items():
        answer = timed(lambda params=params: raw.get("/v1/events", {"limit": 100, **params()}), requests)
        sdk = timed(lambda params=params: client.v1.events.list(params={"limit": 100, **params()}), sdk_requests)
        verdict = "ok" if percentile(answer, 99) < TARGET_PAGE_MS else "MISSED"
        print(f"{label:<30}{percentile(answer, 50):>11.1f}{percentile(answer, 95):>7.1f}{percentile(answer, 99):>7.1f}"
              f"{percentile(sdk, 50):>10.1f}{percentile(sdk, 95):>7.1f}{percentile(sdk, 99):>7.1f}  {verdict}")
    parse = timed(lambda: client.deserialize(json.loads(page), api_mode="V1"), 20)
    print(f"(the SDK alone takes {statistics.median(parse):.0f} ms to turn that newest page into StripeObjects)")


# --- report ------------------------------------------------------------------------------------------------


def pin(cpu: int | None) -> str:
    """Pin this process to `cpu` (None: leave it); say what was done."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def cpus_for_sandbox_and_client(pinned: bool) -> tuple[int | None, int | None]:
    if not pinned or not hasattr(os, "sched_getaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[0], allowed[-1]  # the same CPU when only one is allowed


def run_sandbox(events: int, cpu: int | None, ready: Connection) -> None:
    """Child process: build the event log, then serve it until terminated."""
    pinning = pin(cpu)
    templates = lifecycle_events()
    sb = Sandbox(SandboxSettings(currency="EUR", seed=3, start_time=START))
    started = time.perf_counter()
    fill_event_log(sb, templates, events)
    filled = time.perf_counter() - started
    server = SandboxServer(sb)
    ready.send({"url": server.url, "types": len({t["type"] for t in templates}), "templates": len(templates),
                "filled_seconds": filled, "pinning": pinning})
    server.serve_forever()


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time a process has used (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def peak_rss_mib(pid: int) -> str:
    """Return a process's peak resident memory (Linux), or '?' elsewhere."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "?"
    peak = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return f"{int(peak) / 1024:.0f}" if peak else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--requests", type=int, default=300, help="timed raw events.list requests per case")
    parser.add_argument("--sdk-requests", type=int, default=100,
                        help="timed SDK events.list requests per case (each parses a large page: slow)")
    parser.add_argument("--calls", type=int, default=3000, help="timed SDK calls for the throughput figure")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes to CPUs")
    options = parser.parse_args()
    sandbox_cpu, client_cpu = cpus_for_sandbox_and_client(not options.no_pin)

    receiving, sending = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=run_sandbox, daemon=True,
                                                        args=(options.events, sandbox_cpu, sending))
    child.start()
    try:
        facts = receiving.recv()
        client_pinning = pin(client_cpu)
        print(f"event log: {options.events:,} events of {facts['types']} types (cloned from {facts['templates']} "
              f"lifecycle events) over 30 days, filled in {facts['filled_seconds']:.1f} s")
        print(f"sandbox process {facts['pinning']}; SDK client process {client_pinning}")
        print_page_figures(facts["url"], options.events, options.requests, options.sdk_requests)
        cpu_before = cpu_seconds(child.pid or 0)
        rate = measure_calls(stripe_client(facts["url"]), options.calls)
        sandbox_cpu_ms = (cpu_seconds(child.pid or 0) - cpu_before) * 1000 / options.calls
        verdict = "ok" if rate >= TARGET_CALLS_PER_SECOND else "MISSED"
        print(f"\nSDK calls/s (customers.create + retrieve, {options.calls} calls in sequence): {rate:.0f}  "
              f"target >= {TARGET_CALLS_PER_SECOND:.0f}  {verdict}")
        if sandbox_cpu_ms > 0:
            capacity = 1000 / sandbox_cpu_ms
            verdict = "ok" if capacity >= TARGET_CALLS_PER_SECOND else "MISSED"
            print(f"sandbox CPU per call: {sandbox_cpu_ms:.2f} ms, so its one core sustains ~{capacity:.0f} "
                  f"calls/s  target >= {TARGET_CALLS_PER_SECOND:.0f}  {verdict}  (the sequential figure above "
                  f"also pays the SDK client's own time per call)")
        print(f"peak RSS: sandbox {peak_rss_mib(child.pid or 0)} MiB, SDK client "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        child.terminate()
        child.join()


if __name__ == "__main__":
    main()
