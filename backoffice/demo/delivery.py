"""Deliver the demo's Stripe events through Backoffice's own webhook, as Stripe would, during `flask demo load`.

The command serves the app on a loopback port for the length of the build and registers that URL as a
webhook endpoint of the sandbox, so every event goes through signature check, archive and replay queue
exactly as in production; the replay itself runs once at the end, one pass per customer.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import WSGIRequestHandler, make_server

from backoffice.billing.models import StripeEvent
from backoffice.extensions import db
from backoffice.logs import REQUEST_LOGGER


class QuietHandler(WSGIRequestHandler):
    """No access-log line per delivery: thousands of them would bury the command's progress bar."""

    def log_request(self, *args: object, **kwargs: object) -> None:
        return None


@contextmanager
def local_webhook(app: Flask) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (one request at a time) and yield its webhook URL.

    Meanwhile the app's own request log says only what goes wrong: one line per delivery would bury the phases.
    """
    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="demo-webhook", daemon=True)
    level = REQUEST_LOGGER.level
    REQUEST_LOGGER.setLevel(max(level, logging.WARNING))
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/webhooks/stripe"
    finally:
        server.shutdown()
        server.server_close()
        REQUEST_LOGGER.setLevel(level)


def wait_until_archived(expected: int | None, *, quiet_seconds: float = 3.0, timeout: float = 600.0) -> int:
    """Wait until the archive holds `expected` events, or (not knowing) stops growing; return its size."""
    deadline = time.monotonic() + timeout
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = db.session.scalar(select(func.count()).select_from(StripeEvent))
        db.session.commit()  # a read, ended so that no transaction stays open across the webhook's writes
        if expected is not None and count >= expected:
            return count
        if count != last:
            last, stable_since = count, time.monotonic()
        elif expected is None and time.monotonic() - stable_since >= quiet_seconds:
            return count
        time.sleep(0.2)
    return last
