"""The sandbox over HTTP: a WSGI app with Stripe's authentication, idempotency, rate limits and errors."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from backoffice.stripe_sandbox import documents
from backoffice.stripe_sandbox.api import Router, check_params, expand
from backoffice.stripe_sandbox.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    InvalidRequest,
    RateLimited,
    StripeError,
)
from backoffice.stripe_sandbox.loopback import is_loopback_host
from backoffice.stripe_sandbox.params import Params, decode
from backoffice.stripe_sandbox.resources.sandbox_admin import CONTROL_ROUTES
from backoffice.stripe_sandbox.sandbox import RequestContext, Sandbox, SandboxSettings

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
POLL_SECONDS = 0.05


class RateLimiter:
    """Stripe-like budgets: so many reads and so many writes per wall-clock second.

    The budgets are read from the settings on every request, so a test or the admin route can change
    them while the sandbox runs; None means unlimited.
    """

    def __init__(self, settings: SandboxSettings):
        self.settings = settings
        self.window = int(time.monotonic())
        self.used = {"read": 0, "write": 0}
        self.lock = threading.Lock()

    def budget(self, kind: str) -> int | None:
        return self.settings.rate_limit_writes if kind == "write" else self.settings.rate_limit_reads

    def admit(self, kind: str) -> bool:
        budget = self.budget(kind)
        if budget is None:
            return True
        with self.lock:
            second = int(time.monotonic())
            if second != self.window:
                self.window, self.used = second, {"read": 0, "write": 0}
            if self.used[kind] >= budget:
                return False
            self.used[kind] += 1
            return True


class SandboxApp:
    """The WSGI application in front of a Sandbox."""

    def __init__(self, sandbox: Sandbox, router: Router):
        self.sandbox = sandbox
        self.router = router
        self.limiter = RateLimiter(sandbox.settings)
        self.idempotent: dict[str, tuple[str, int, bytes]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        request_id = "req_" + hashlib.sha1(f"{id(request)}{time.perf_counter_ns()}".encode()).hexdigest()[:14]
        try:
            response = self.handle(request, request_id)
        except StripeError as error:
            response = self.json(error.body(), error.status)
        except Exception:  # a sandbox bug: answer like Stripe's api_error and keep serving
            log.exception("sandbox error on %s %s", request.method, request.path)
            response = self.json({"error": {"type": "api_error", "message": "An unknown error occurred"}}, 500)
        response.headers["Request-Id"] = request_id
        response.headers["Stripe-Version"] = self.sandbox.settings.api_version
        return response(environ, start_response)

    def handle(self, request: Request, request_id: str) -> Response:
        if request.path.startswith(documents.PREFIX + "/"):
            return self.document(request)
        self.authenticate(request)
        method = request.method.upper()
        route, path_args = self.router.match(method, request.path)
        self.sandbox.count(route.name)
        # The sandbox's own control routes are never limited: a test must be able to lift a limit it set.
        if route.name not in CONTROL_ROUTES and not self.limiter.admit("write" if route.writes else "read"):
            raise RateLimited()
        params = Params(self.read_params(request, method))
        key = request.headers.get("Idempotency-Key") if method == "POST" else None
        fingerprint = f"{method} {request.path} {json.dumps(params.values, sort_keys=True)}"
        if key:
            cached = self.idempotent.get(key)
            if cached is not None:
                if cached[0] != fingerprint:
                    raise IdempotencyConflict(key)
                replay = Response(cached[2], status=cached[1], mimetype="application/json")
                replay.headers["Idempotent-Replayed"] = "true"
                return replay
        check_params(route, params)
        token = self.sandbox.begin_request(RequestContext(request_id, key))
        try:
            with self.sandbox.transaction():
                result = route.handler(self.sandbox, params, **path_args)
                result = expand(result, [str(p) for p in params.array("expand")], self.sandbox.store.find)
                # Handlers return live store objects: serialise them before another request may change them.
                response = self.json(result, 200)
        except StripeError as error:
            response = self.json(error.body(), error.status)
        finally:
            self.sandbox.end_request(token)
        if key and response.status_code != 429:
            self.idempotent[key] = (fingerprint, response.status_code, response.get_data())
        if route.writes and response.status_code == 200:
            self.sandbox.changed()
        return response

    def document(self, request: Request) -> Response:
        """A hosted document (documents.py): no API key, GET only, a plain 404 page when there is none."""
        if request.method not in ("GET", "HEAD"):
            return Response("Method not allowed", status=405, mimetype="text/plain", headers={"Allow": "GET, HEAD"})
        try:
            with self.sandbox.store.lock:
                body, media_type = documents.render(request.path, self.sandbox.store.find)
        except documents.DocumentMissing:
            return Response("No such document", status=404, mimetype="text/plain")
        return Response(body, mimetype=media_type, headers={"Cache-Control": "no-store"})

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        if not header:
            raise AuthenticationFailed(
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
        scheme, _, key = header.partition(" ")
        if scheme.lower() == "basic":
            import base64
            import binascii

            try:
                key = base64.b64decode(key).decode().split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if key.strip() != self.sandbox.settings.secret_key:
            shown = key.strip()[:8] + "*" * max(0, len(key.strip()) - 12) + key.strip()[-4:]
            raise AuthenticationFailed(f"Invalid API Key provided: {shown}")

    def read_params(self, request: Request, method: str) -> dict[str, Any]:
        query = decode(request.query_string.decode("utf-8", "replace"))
        if method != "POST":
            return query
        if (request.content_length or 0) > MAX_BODY:
            raise InvalidRequest("The request body is too large.")
        content_type = request.mimetype or "application/x-www-form-urlencoded"
        raw = request.get_data(cache=False)
        if raw and content_type != "application/x-www-form-urlencoded":
            raise InvalidRequest(
                f"Invalid request: the body must be application/x-www-form-urlencoded, not {content_type}.")
        try:
            body = decode(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequest("Invalid request: the body is not valid UTF-8.") from None
        return {**query, **body}

    @staticmethod
    def json(body: dict[str, Any], status: int) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")


class QuietHandler(WSGIRequestHandler):
    """Serve without an access-log line per request (tests and benchmarks make thousands)."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        return None


class SandboxServer:
    """Serve a sandbox on loopback, from a background thread (`start`) or the caller's (`serve_forever`)."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0):
        from backoffice.stripe_sandbox.routes import build_router

        if not is_loopback_host(host):
            raise ValueError(f"the sandbox listens on loopback addresses only, not {host!r}")
        self.sandbox = sandbox
        self.app = SandboxApp(sandbox, build_router())
        self.server: BaseWSGIServer = make_server(host, port, self.app, threaded=True, request_handler=QuietHandler)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self.sandbox.start()
        # A short poll interval makes `stop` quick: shutdown waits for the serving loop's next poll.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                                       name="stripe-sandbox", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted, then stop (saving the state)."""
        self.sandbox.start()
        try:
            self.server.serve_forever(poll_interval=POLL_SECONDS)
        finally:
            self.sandbox.stop()
            self.server.server_close()

    def stop(self) -> None:
        """Stop a server started with `start`."""
        self.server.shutdown()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        self.sandbox.stop()
        self.server.server_close()
