"""The web process as the Procfile runs it logs every request but Stripe's accepted deliveries (web/access_log.py)."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.jobs.conftest import committed_database  # noqa: F401  (a database a second process can see)
from tests.throwaway_servers import free_port
from tests.web.test_stripe_webhook import SECRET, sign

ROOT = Path(__file__).resolve().parents[2]


def procfile_logger_class() -> str:
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    words = shlex.split(web.removeprefix("web:"))
    return words[words.index("--logger-class") + 1]


def ask(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def test_accepted_deliveries_leave_no_line_and_everything_else_does(committed_database, tmp_path):  # noqa: F811
    port, log = free_port(), tmp_path / "access.log"
    env = {**os.environ, "DATABASE_URL": committed_database.replace("postgresql+psycopg://", "postgresql://"),
           "SECRET_KEY": "test", "STRIPE_WEBHOOK_SECRETS": SECRET, "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--worker-class", "gthread", "--threads", "2", "--access-logfile", str(log),
         "--logger-class", procfile_logger_class()],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert ask(f"{base}/healthz") == 200
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        body = json.dumps({"id": f"evt_log_{uuid.uuid4().hex}", "object": "event", "type": "customer.created",
                           "created": int(time.time()), "api_version": "2025-03-31.basil",
                           "data": {"object": {"object": "customer", "id": "cus_log"}}}).encode()
        json_type = {"Content-Type": "application/json"}
        assert ask(f"{base}/webhooks/stripe", body, {**json_type, "Stripe-Signature": sign(body)}) == 200
        assert ask(f"{base}/webhooks/stripe", body, {**json_type, "Stripe-Signature": "t=1,v1=00"}) == 400
    finally:
        server.terminate()
        server.wait(20)
    lines = log.read_text().splitlines()
    webhook = [line for line in lines if '"POST /webhooks/stripe' in line]
    assert len(webhook) == 1 and '" 400 ' in webhook[0], lines
    assert any('"GET /healthz' in line and '" 200 ' in line for line in lines), lines
