"""One JSON line per request, with its duration and the operator."""
import io
import json
import logging

from backoffice.logs import REQUEST_LOGGER, JsonFormatter


def test_each_request_logs_one_json_line(client, operator_headers):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    REQUEST_LOGGER.addHandler(handler)
    previous = REQUEST_LOGGER.level
    REQUEST_LOGGER.setLevel(logging.INFO)
    try:
        client.get("/users", headers=operator_headers)
    finally:
        REQUEST_LOGGER.removeHandler(handler)
        REQUEST_LOGGER.setLevel(previous)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "request"
    assert (entry["method"], entry["path"], entry["endpoint"], entry["status"]) == ("GET", "/users", "users.index", 200)
    assert entry["operator"] == "oid-operator@example.com"
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert entry["ts"].endswith("+00:00")


def test_the_text_format_keeps_the_extra_fields_for_people():
    import logging

    from backoffice.logs import TextFormatter

    record = logging.LogRecord("backoffice.job", logging.INFO, __file__, 1, "job", (), None)
    record.job, record.outcome, record.duration_ms = "backoffice.billing.replay.tasks.replay_customer", "finished", 12.5
    assert TextFormatter().format(record) == (
        "INFO backoffice.job job job=backoffice.billing.replay.tasks.replay_customer outcome=finished duration_ms=12.5")
