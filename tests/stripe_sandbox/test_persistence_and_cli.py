"""The sandbox's state file, and the `flask sandbox serve` and `flask sandbox advance` commands."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe

from backoffice import create_app
from backoffice.stripe_sandbox import Sandbox, SandboxSettings
from backoffice.stripe_sandbox.persistence import StateFileError
from backoffice.stripe_sandbox.server import SandboxServer
from tests.stripe_sandbox.conftest import START, create_endpoint

ROOT = Path(__file__).resolve().parents[2]
# A database URL that is never connected to: the sandbox commands need the app's config, not its database.
UNUSED_DATABASE = "postgresql://nobody@127.0.0.1:9/unused"


def client_for(server: SandboxServer) -> stripe.StripeClient:
    return stripe.StripeClient(server.sandbox.settings.secret_key, base_addresses={"api": server.url},
                               max_network_retries=0)


@pytest.fixture
def state_settings(sandbox_settings, tmp_path) -> SandboxSettings:
    sandbox_settings.state_path = str(tmp_path / "sandbox.json")
    return sandbox_settings


# --- the state file -------------------------------------------------------------------------------------


def test_state_survives_a_restart(state_settings, webhook_receiver):
    first = SandboxServer(Sandbox(state_settings)).start()
    client = client_for(first)
    endpoint = create_endpoint(client, webhook_receiver.url)
    customer = client.v1.customers.create(params={"name": "Kept", "tax_id_data": [{"type": "eu_vat",
                                                                                   "value": "DK12345678"}]})
    client.raw_request("post", "/v1/test_helpers/sandbox_clock/advance", days=2)
    first.sandbox.webhooks.wait_idle()
    events_before = [e.to_dict() for e in client.v1.events.list(params={"limit": 100}).data]
    first.stop()
    objects_before = json.loads(json.dumps(first.sandbox.store.objects))

    second = SandboxServer(Sandbox(state_settings)).start()
    try:
        client = client_for(second)
        assert second.sandbox.store.objects == objects_before
        assert second.sandbox.now() == START + 2 * 86400
        assert [e.to_dict() for e in client.v1.events.list(params={"limit": 100}).data] == events_before
        assert client.v1.customers.retrieve(customer.id).name == "Kept"
        assert second.sandbox.webhooks.secret(endpoint.id) == endpoint.secret
        assert second.sandbox.new_id("cus") == first.sandbox.new_id("cus")  # the id sequence goes on
        client.v1.customers.update(customer.id, params={"email": "kept@example.com"})
        second.sandbox.webhooks.wait_idle()
        last = webhook_receiver.received[-1]
        assert stripe.Webhook.construct_event(last.body, last.headers["Stripe-Signature"], endpoint.secret).type == \
            "customer.updated"
    finally:
        second.stop()


def test_a_write_is_saved_shortly_after_the_request(state_settings):
    state_settings.state_save_delay_seconds = 0.05
    server = SandboxServer(Sandbox(state_settings)).start()
    try:
        customer = client_for(server).v1.customers.create(params={"name": "Soon"})
        path = Path(state_settings.state_path)
        deadline = time.monotonic() + 5
        while not (path.exists() and customer.id in path.read_text()):
            assert time.monotonic() < deadline, "the state was not saved"
            time.sleep(0.02)
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    finally:
        server.stop()


def test_reads_and_failed_writes_do_not_save(state_settings):
    state_settings.state_save_delay_seconds = 0
    server = SandboxServer(Sandbox(state_settings)).start()
    client = client_for(server)
    client.v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create(params={"nmae": "typo"})
    assert not Path(state_settings.state_path).exists()
    server.stop()
    assert json.loads(Path(state_settings.state_path).read_text())["store"]["objects"] == {}  # saved at stop


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot read"),
    ('{"format": 99}', "format 99"),
    ('{"format": 1}', "does not hold a sandbox state"),
])
def test_an_unreadable_state_file_is_refused(state_settings, content, message):
    Path(state_settings.state_path).write_text(content)
    with pytest.raises(StateFileError, match=message):
        Sandbox(state_settings)


# --- the commands, in-process -----------------------------------------------------------------------------


def cli_app(**config):
    return create_app({"TESTING": True, "SECRET_KEY": "cli", "SQLALCHEMY_DATABASE_URI": UNUSED_DATABASE,
                       "LOG_LEVEL": "WARNING", **config})


def test_advance_moves_the_running_sandboxs_clock(sandbox_server, sandbox_settings):
    app = cli_app(STRIPE_API_BASE=sandbox_server.url, STRIPE_SECRET_KEY=sandbox_settings.secret_key)
    result = app.test_cli_runner().invoke(args=["sandbox", "advance", "--days", "3"])
    assert result.exit_code == 0, result.output
    assert sandbox_server.sandbox.now() == START + 3 * 86400
    assert "2026-01-04T00:00:00+00:00" in result.output


def test_advance_needs_a_sandbox_on_this_machine():
    unset = cli_app().test_cli_runner().invoke(args=["sandbox", "advance", "--days", "1"])
    assert unset.exit_code == 1 and "STRIPE_API_BASE is not set" in unset.output
    remote = cli_app(STRIPE_API_BASE="https://api.stripe.com", STRIPE_SECRET_KEY="sk_test_x").test_cli_runner()
    refused = remote.invoke(args=["sandbox", "advance", "--days", "1"])
    assert refused.exit_code == 1 and "not a sandbox on this machine" in refused.output


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "not a loopback address"),
    (["--host", "192.168.1.10"], "not a loopback address"),
    (["--vat", "Denmark=25"], "is not COUNTRY=RATE"),
    (["--vat", "DK=125"], "up to 100"),
    (["--secret-key", "sk_live_real"], "not a test secret key"),
])
def test_serve_refuses_bad_options(args, message):
    result = cli_app().test_cli_runner().invoke(args=["sandbox", "serve", *args])
    assert result.exit_code == 2 and message in result.output


# --- the commands, as processes -------------------------------------------------------------------------


def flask_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "FLASK_APP": "wsgi:app", "DATABASE_URL": UNUSED_DATABASE, "SECRET_KEY": "cli",
            "PLATFORM_CURRENCY": "DKK", "LOG_LEVEL": "WARNING", **extra}


@pytest.fixture
def serve(tmp_path) -> Iterator:
    """Start `flask sandbox serve` processes; return their banner lines; stop them after the test."""
    processes: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, list[str]]:
        process = subprocess.Popen([sys.executable, "-m", "flask", "sandbox", "serve", "--port", "0", *args],
                                   cwd=ROOT, env=flask_env(), stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout is not None
        banner = [process.stdout.readline().strip() for _ in range(7)]
        assert banner[-1] == "Press Ctrl+C to stop.", banner
        return process, banner

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen) -> str:
    """End a served sandbox as a service manager would, and return the rest of its output."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    return output


def test_serve_then_advance_then_serve_again_from_the_state_file(serve, tmp_path):
    state = tmp_path / "state.json"
    process, banner = serve("--state", str(state), "--vat", "DK=25,DE=19", "--seed", "4")
    url = re.search(r"export STRIPE_API_BASE=(\S+)", "\n".join(banner)).group(1)
    assert url.startswith("http://127.0.0.1:")
    assert "currency dkk, VAT DE 19%, DK 25%" in banner[1] and "Secret key: sk_test_sandbox" in banner
    client = stripe.StripeClient("sk_test_sandbox", base_addresses={"api": url}, max_network_retries=0)
    customer = client.v1.customers.create(params={"name": "Across restarts"})
    before = client.deserialize(client.raw_request("get", "/v1/test_helpers/sandbox_clock"), api_mode="V1")

    advanced = subprocess.run([sys.executable, "-m", "flask", "sandbox", "advance", "--days", "3"], cwd=ROOT,
                              env=flask_env(STRIPE_API_BASE=url, STRIPE_SECRET_KEY="sk_test_sandbox"),
                              capture_output=True, text=True, timeout=60)
    assert advanced.returncode == 0, advanced.stderr
    assert advanced.stdout.startswith("Sandbox clock now ")
    assert stop(process).strip() == "Sandbox stopped."

    process, banner = serve("--state", str(state))
    url = re.search(r"export STRIPE_API_BASE=(\S+)", "\n".join(banner)).group(1)
    client = stripe.StripeClient("sk_test_sandbox", base_addresses={"api": url}, max_network_retries=0)
    assert client.v1.customers.retrieve(customer.id).name == "Across restarts"
    clock = client.deserialize(client.raw_request("get", "/v1/test_helpers/sandbox_clock"), api_mode="V1")
    assert clock.frozen_time == before.frozen_time + 3 * 86400
    stop(process)
