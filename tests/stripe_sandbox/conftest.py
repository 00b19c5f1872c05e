"""A fresh sandbox on a loopback port per test and the official SDK pointed at it; webhook receivers;
Stripe's sample objects."""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer
from tests.samples import StripeSamples, load_samples
from tests.stripe_sandbox.billing_helpers import make_price

# 2026-01-01T00:00:00Z: a fixed start so periods and dates are repeatable.
START = 1767225600


@pytest.fixture
def sandbox_settings() -> SandboxSettings:
    return SandboxSettings(currency="EUR", tax_rates={"DK": Decimal("25"), "DE": Decimal("19")}, seed=7,
                           start_time=START)


@pytest.fixture
def sandbox_server(sandbox_settings):
    server = SandboxServer(Sandbox(sandbox_settings)).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server) -> Sandbox:
    return sandbox_server.sandbox


@pytest.fixture
def stripe_client(sandbox_server, sandbox_settings) -> stripe.StripeClient:
    """The real SDK, with retries off so each call is one request."""
    return stripe.StripeClient(sandbox_settings.secret_key, base_addresses={"api": sandbox_server.url},
                               max_network_retries=0)


# --- webhook receivers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One POST the receiver got."""

    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records webhook POSTs and answers with scripted statuses."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: deque[int] = deque()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"

    def answer(self, *statuses: int) -> None:
        """Answer the next POSTs with these statuses, then 200 again."""
        with self.lock:
            self.answers.extend(statuses)

    def event_ids(self) -> list[str]:
        with self.lock:
            return [r.event["id"] for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, received: Received) -> int:
        with self.lock:
            self.received.append(received)
            return self.answers.popleft() if self.answers else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server hook's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver._record(Received(dict(self.headers), body, time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


@pytest.fixture
def receiver_factory():
    """Return a function that starts webhook receivers, all closed after the test."""
    receivers: list[WebhookReceiver] = []

    def start() -> WebhookReceiver:
        receivers.append(WebhookReceiver())
        return receivers[-1]

    yield start
    for receiver in receivers:
        receiver.close()


@pytest.fixture
def webhook_receiver(receiver_factory) -> WebhookReceiver:
    return receiver_factory()


@pytest.fixture
def fast_webhooks(sandbox) -> Sandbox:
    """Make retries and shuffle batches quick enough for tests (the defaults are for people)."""
    sandbox.settings.webhook_retry_base_seconds = 0.02
    sandbox.settings.webhook_retry_max_seconds = 0.1
    sandbox.settings.webhook_shuffle_linger_seconds = 0.1
    return sandbox


def create_endpoint(client: stripe.StripeClient, url: str, events: tuple[str, ...] = ("*",),
                    **params: Any) -> stripe.WebhookEndpoint:
    """Create a webhook endpoint through the SDK (the create response carries its secret)."""
    return client.v1.webhook_endpoints.create(params={"url": url, "enabled_events": list(events), **params})


# --- Stripe's own samples (../shared, or BACKOFFICE_STRIPE_SAMPLES) --------------------------------------


@pytest.fixture(scope="session")
def stripe_samples() -> StripeSamples:
    return load_samples()


@pytest.fixture
def premium(stripe_client):
    """A monthly price of 99.00 (minor units 9900) that the billing tests subscribe to."""
    return make_price(stripe_client, 9900, name="Premium")
