"""The gateway against real HTTP on loopback: the project's Stripe sandbox, a scripted Stripe for answers the
sandbox never gives (5xx, Retry-After), a port nobody listens on, and a real Redis."""
from __future__ import annotations

import json
import socket
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from backoffice.stripe_gateway import InProcessTokenBucket, StripeGateway
from backoffice.stripe_sandbox.server import QuietHandler
from tests.conftest import REDIS_SERVER
from tests.stripe_sandbox.conftest import premium, sandbox, sandbox_server, sandbox_settings, stripe_client  # noqa: F401


@pytest.fixture
def gateway(sandbox_server, sandbox_settings) -> StripeGateway:  # noqa: F811 (the imported fixtures)
    """A gateway on the sandbox with a roomy bucket and short backoffs."""
    return StripeGateway(sandbox_settings.secret_key, sandbox_server.url, InProcessTokenBucket(1000),
                         backoff_seconds=0.05)


@pytest.fixture
def redis() -> Iterator[Redis]:
    connection = Redis.from_url(REDIS_SERVER)
    yield connection
    connection.close()


@pytest.fixture
def redis_prefix(redis) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-gateway:{uuid.uuid4().hex}:"
    yield prefix
    keys = list(redis.scan_iter(match=f"{prefix}*"))
    if keys:
        redis.delete(*keys)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection is refused, and no one can take it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class ScriptedStripe:
    """A loopback HTTP server answering requests with scripted (status, headers, body) triples, then 200 `fallback`."""

    def __init__(self, fallback: dict[str, Any]):
        self.fallback = fallback
        self.answers: deque[tuple[int, dict[str, str], dict[str, Any]]] = deque()
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=QuietHandler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, status: int, body: dict[str, Any], **headers: str) -> None:
        """Answer the next request so (header names with `_` for `-`); later ones get the fallback."""
        with self.lock:
            self.answers.append((status, {k.replace("_", "-"): v for k, v in headers.items()}, body))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @Request.application
    def app(self, request: Request) -> Response:
        with self.lock:
            self.paths.append(request.path)
            status, headers, body = self.answers.popleft() if self.answers else (200, {}, self.fallback)
        return Response(json.dumps(body), status=status, headers={"Request-Id": "req_scripted", **headers},
                        mimetype="application/json")


@pytest.fixture
def scripted_stripe() -> Iterator[ScriptedStripe]:
    server = ScriptedStripe({"id": "cus_scripted", "object": "customer", "email": "ops@example.com",
                             "created": 1767225600, "currency": "eur", "metadata": {"tenant_id": "ten_1"}})
    yield server
    server.close()
