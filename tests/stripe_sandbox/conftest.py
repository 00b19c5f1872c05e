"""A fresh sandbox on a loopback port per test, and the official SDK pointed at it."""
from __future__ import annotations

from decimal import Decimal

import pytest
import stripe

from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.server import SandboxServer

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
