"""Structured logging: one JSON line per request and per job, with its duration."""
from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

REQUEST_LOGGER = logging.getLogger("backoffice.request")
JOB_LOGGER = logging.getLogger("backoffice.job")

# LogRecord attributes that are not extra fields passed by the caller.
_STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extra_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES}


class TextFormatter(logging.Formatter):
    """A line for people at a terminal (the demo): level, logger, message, then the extra fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join([record.levelname, record.name, record.getMessage(),
                         *(f"{key}={value}" for key, value in _extra_fields(record).items())])
        return f"{line}\n{self.formatException(record.exc_info)}" if record.exc_info else line


def configure_root_logger(level: str, fmt: str) -> None:
    """Send the backoffice loggers to stderr in the chosen format, once per process."""
    logger = logging.getLogger("backoffice")
    logger.setLevel(level)
    if not any(getattr(h, "backoffice", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.backoffice = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())


def _start_timer() -> None:
    g.request_started = time.perf_counter()


def _log_request(response: Response) -> Response:
    started = g.pop("request_started", None)
    if started is None or request.endpoint == "static":
        return response
    from flask_login import current_user

    operator = current_user.get_id() if current_user and current_user.is_authenticated else None
    REQUEST_LOGGER.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "endpoint": request.endpoint,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "operator": operator,
        },
    )
    return response


def log_job(name: str, job_id: str | None, started: float, outcome: str, **fields: Any) -> None:
    """Write the one line a finished job leaves."""
    JOB_LOGGER.info(
        "job",
        extra={
            "job": name,
            "job_id": job_id,
            "outcome": outcome,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            **fields,
        },
    )


def init_app(app: Flask) -> None:
    """Configure the loggers and time every request."""
    configure_root_logger(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    app.before_request(_start_timer)
    app.after_request(_log_request)
