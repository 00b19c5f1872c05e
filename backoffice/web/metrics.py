"""Prometheus metrics: request counts and durations, served at /metrics to signed-in operators."""
from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("backoffice_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
LATENCY = Histogram("backoffice_http_request_duration_seconds", "HTTP request duration", ["endpoint"])


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    endpoint = request.endpoint or "unmatched"
    if started is not None and endpoint != "static":
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    return response


def metrics_view() -> Response:
    """Expose the metrics in Prometheus' text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Under gunicorn each worker writes its own files; collect them all.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        payload = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        payload = generate_latest(REGISTRY)
    return Response(payload, mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Measure every request and add the /metrics route (behind the operator login)."""
    app.before_request(_start)
    app.after_request(_observe)
    app.add_url_rule("/metrics", "metrics", metrics_view)
