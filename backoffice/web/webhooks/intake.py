"""POST /webhooks/stripe: verify, archive, acknowledge — as a WSGI layer in front of Flask (DESIGN §2.1).

Stripe retries a backlog in bursts, and a slow acknowledgement turns a burst into timeouts and more retries, so
this path pays only for what it needs. Flask's per-request work (identity, CSRF, Babel, the session, the request
log and metrics hooks) is for operators' pages, not for Stripe, whose signature is its credential: the delivery
is answered here, before Flask. The body is parsed once; concurrent deliveries share one transaction
(billing/intake/group_commit.py), each answered only after that commit; and the replay each stored event asks
for is requested off the request by a thread of its own (replay_requests.py), so Redis, slow or down, never
holds an acknowledgement. Every other path goes to Flask.

When the app's database is a single test connection rather than an engine, no second thread may use it: each
delivery is then archived alone in the request's thread, through the same `archive_many`.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from backoffice.billing.intake.group_commit import ArchiveTimeout, GroupArchiver
from backoffice.billing.intake.webhook import (
    Envelope,
    Outcome,
    WebhookRejected,
    archive,
    read_envelope,
    verify_signature,
)
from backoffice.billing.operations import queue_replay
from backoffice.extensions import db
from backoffice.web.webhooks.replay_requests import ReplayRequests

PATH = "/webhooks/stripe"
log = logging.getLogger(__name__)

DELIVERIES = Counter("backoffice_stripe_webhook_deliveries_total", "Stripe webhook deliveries by outcome",
                     ["outcome"])
# Each outcome's child bound once: `labels()` takes a lock and a lookup per call.
COUNTED = {outcome: DELIVERIES.labels(outcome) for outcome in (*(o.value for o in Outcome), "rejected", "unavailable")}
SECONDS = Histogram("backoffice_stripe_webhook_seconds", "Time to verify, archive and acknowledge a Stripe delivery",
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]
STATUS = {200: "200 OK", 400: "400 Bad Request", 405: "405 Method Not Allowed", 413: "413 Content Too Large",
          500: "500 Internal Server Error", 503: "503 Service Unavailable"}
StartResponse = Callable[..., Any]


class WebhookIntake:
    """The WSGI application that answers Stripe's deliveries and hands every other request to `inner`."""

    def __init__(self, app: Flask, inner: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]):
        self.app = app
        self.inner = inner
        with app.app_context():
            self.engines = db.engines  # the app's binds, read per delivery (a test swaps in its connection)
        self.replays = ReplayRequests(app)
        self._archivers: dict[int, GroupArchiver] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.inner(environ, start_response)
        with SECONDS.time():
            status, answer = self.deliver(environ)
        body = json.dumps(answer).encode()
        headers = [*HEADERS, ("Content-Length", str(len(body)))]
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(STATUS[status], headers)
        return [body]

    def deliver(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if environ.get("REQUEST_METHOD") != "POST":
            return 405, {"error": "only POST is allowed here"}
        config = self.app.config
        payload = _body(environ, config["MAX_CONTENT_LENGTH"])
        if payload is None:
            COUNTED["rejected"].inc()
            return 413, {"error": f"body is larger than {config['MAX_CONTENT_LENGTH']} bytes"}
        try:
            verify_signature(payload, environ.get("HTTP_STRIPE_SIGNATURE"), config["STRIPE_WEBHOOK_SECRETS"])
            envelope = read_envelope(payload)
        except WebhookRejected as rejected:
            COUNTED["rejected"].inc()
            return 400, {"error": str(rejected)}
        try:
            outcome = self._archive(envelope, payload)
        except (OperationalError, DBAPIError, ArchiveTimeout) as error:
            if isinstance(error, DBAPIError) and not isinstance(error, OperationalError) \
                    and not error.connection_invalidated:
                log.exception("webhook %s not archived", envelope.id)
                return 500, {"error": "internal error; Stripe will retry"}
            # Not acknowledged, so Stripe retries: nothing acknowledged is ever lost.
            log.warning("webhook %s not archived, database unavailable: %s", envelope.id, type(error).__name__)
            COUNTED["unavailable"].inc()
            return 503, {"error": "database unavailable; Stripe will retry"}
        except Exception:
            log.exception("webhook %s not archived", envelope.id)
            return 500, {"error": "internal error; Stripe will retry"}
        COUNTED[outcome.value].inc()
        return 200, {"received": True, "id": envelope.id, "outcome": outcome.value}

    def _archive(self, envelope: Envelope, payload: bytes) -> Outcome:
        bind = self.engines[None]
        if isinstance(bind, Engine):
            archiver = self._archivers.get(id(bind))
            if archiver is None:
                archiver = self._archivers.setdefault(id(bind), GroupArchiver(bind, self.replays.request))
            return archiver.archive(envelope, payload, timeout=self.app.config["DATABASE_POOL_TIMEOUT"])
        return self._archive_alone(envelope, payload)

    def _archive_alone(self, envelope: Envelope, payload: bytes) -> Outcome:
        with self.app.app_context():
            try:
                outcome = archive(db.session, envelope, payload)
                db.session.commit()
            except Exception:
                db.session.rollback()
                raise
            if outcome is Outcome.STORED:
                try:
                    queue_replay(envelope.customer_id)
                except RedisError as error:
                    # Archived and acknowledged all the same: the pending sweeper queues it once Redis is back.
                    log.warning("replay of %s not queued, Redis unavailable: %s", envelope.id, type(error).__name__)
            return outcome


def _body(environ: dict[str, Any], limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes (read no further than that)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length > limit:
        return None
    stream = environ["wsgi.input"]
    payload = stream.read(length) if length >= 0 else stream.read(limit + 1)
    return None if len(payload) > limit else payload


def init_app(app: Flask) -> None:
    """Put the intake in front of the app (and of whatever WSGI layers it already has)."""
    app.wsgi_app = WebhookIntake(app, app.wsgi_app)  # type: ignore[method-assign]
