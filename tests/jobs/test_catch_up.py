"""Catching up (issue 18): a backlog archived while Redis was away is queued at once when a worker reaches Redis,
not at the pending sweeper's next minute, and drains within 30 s for 1,800 events."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from backoffice.billing.intake.webhook import archive, read_envelope
from backoffice.extensions import db
from tests.conftest import ROOT_DIR
from tests.jobs.pending import pending

BACKLOG = 1800
CUSTOMERS = 600
TARGET_SECONDS = 30


def archive_backlog(app, count):
    """Archive `count` events, as the webhook does while Redis is away: stored pending, no replay queued."""
    created = int(time.time()) - 120
    with app.app_context():
        for number in range(count):
            body = {"id": f"evt_backlog_{number}", "object": "event", "type": "customer.updated", "created": created,
                    "api_version": "2025-03-31.basil",
                    "data": {"object": {"object": "customer", "id": f"cus_backlog_{number % CUSTOMERS}"}}}
            payload = json.dumps(body).encode()
            archive(db.session, read_envelope(payload), payload)
        db.session.commit()
        db.session.remove()


@pytest.mark.timeout(180)
def test_a_backlog_of_1800_events_drains_within_30_s_once_a_worker_reaches_redis(make_app, committed_database,
                                                                                 redis_server, tmp_path):
    app = make_app(REDIS_URL=redis_server.url, SQLALCHEMY_DATABASE_URI=committed_database)
    archive_backlog(app, BACKLOG)
    assert pending(app) == BACKLOG
    env = {**os.environ, "DATABASE_URL": committed_database.replace("postgresql+psycopg://", "postgresql://"),
           "REDIS_URL": redis_server.url, "SECRET_KEY": "test", "LOG_FORMAT": "text", "LOG_LEVEL": "WARNING"}
    log = tmp_path / "worker.log"
    started = time.monotonic()
    with log.open("w") as output:
        worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT_DIR, env=env, stdout=output,
                                  stderr=subprocess.STDOUT)
    try:
        drained = None
        while time.monotonic() - started < TARGET_SECONDS * 2:
            if pending(app) == 0:
                drained = time.monotonic() - started
                break
            time.sleep(0.25)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        with app.app_context():
            db.engine.dispose()
    print(f"{BACKLOG} events of {CUSTOMERS} customers drained in {drained} s by one worker (process start included)")
    assert drained is not None and drained < TARGET_SECONDS, (drained, log.read_text()[-3000:])
