"""Workers that survive (issue 18): `python worker.py` and `python worker.py --scheduler`, as the Procfile runs them,
ride out a Redis outage and catch up by themselves when it returns.

Both run as subprocesses against a throwaway redis-server, which is killed (it comes back empty, as a lost Redis
does) and restarted on the same port. Webhooks archived meanwhile are replayed without waiting for the minute's sweep.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from backoffice.extensions import db
from backoffice.jobs import enqueue, job_status
from backoffice.liveness import REDIS_OK, read_beats
from tests.conftest import ROOT_DIR
from tests.jobs.pending import pending
from tests.web.test_stripe_webhook import SECRET, sign


def start(database_url, redis_url, log_path, *arguments, **popen):
    env = {**os.environ, "DATABASE_URL": database_url.replace("postgresql+psycopg://", "postgresql://"),
           "REDIS_URL": redis_url, "SECRET_KEY": "test", "LOG_FORMAT": "text", "LOG_LEVEL": "INFO"}
    with log_path.open("w") as log:
        return subprocess.Popen([sys.executable, "worker.py", *arguments], cwd=ROOT_DIR, env=env, stdout=log,
                                stderr=subprocess.STDOUT, **popen)


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")


def beats(app):
    from datetime import UTC, datetime

    with app.app_context():
        try:
            return {beat.role: beat for beat in read_beats(db.session, datetime.now(UTC), 10) if beat.alive}
        finally:
            db.session.remove()


def post_events(app, count):
    client = app.test_client()
    for number in range(count):
        body = {"id": f"evt_outage_{number}", "object": "event", "type": "customer.updated",
                "created": int(time.time()), "api_version": "2025-03-31.basil",
                "data": {"object": {"object": "customer", "id": f"cus_outage_{number % 5}"}}}
        payload = json.dumps(body).encode()
        response = client.post("/webhooks/stripe", data=payload,
                               headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"})
        assert response.status_code == 200, response.get_data(as_text=True)


def stopped(process):
    """The exit code after SIGTERM; a process that ignores it is killed, and fails the test."""
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return "ignored SIGTERM"


@pytest.mark.timeout(120)
def test_worker_and_scheduler_ride_out_a_redis_outage_and_catch_up(make_app, committed_database, redis_server,
                                                                   tmp_path):
    app = make_app(REDIS_URL=redis_server.url, SQLALCHEMY_DATABASE_URI=committed_database,
                   STRIPE_WEBHOOK_SECRETS=(SECRET,), REDIS_CIRCUIT_SECONDS=0.2)
    worker_log, scheduler_log = tmp_path / "worker.log", tmp_path / "scheduler.log"
    worker = start(committed_database, redis_server.url, worker_log)
    scheduler = start(committed_database, redis_server.url, scheduler_log, "--scheduler")
    try:
        wait_for(lambda: {"worker", "scheduler"} <= {role for role, beat in beats(app).items()
                                                     if beat.redis == REDIS_OK}, 30, "both processes beat")

        redis_server.stop()
        post_events(app, 20)  # archived and acknowledged; their replays cannot be queued
        assert pending(app) == 20
        wait_for(lambda: all(beat.redis != REDIS_OK for beat in beats(app).values()) and len(beats(app)) == 2, 15,
                 lambda: f"both heartbeats say they wait for Redis: {beats(app)}\n{worker_log.read_text()[-3000:]}")
        time.sleep(4)
        assert worker.poll() is None, worker_log.read_text()[-3000:]
        assert scheduler.poll() is None, scheduler_log.read_text()[-3000:]
        # One line per attempt, backing off: ours, or RQ's own while the worker waits for jobs.
        for log in (worker_log, scheduler_log):
            attempts = [line for line in log.read_text().splitlines()
                        if "waiting for Redis" in line or "could not connect to Redis instance" in line]
            assert len(attempts) >= 2, log.read_text()[-3000:]

        redis_server.start()  # the same port, empty
        back = time.monotonic()
        wait_for(lambda: pending(app) == 0, 30, "the events archived during the outage replayed")
        caught_up = time.monotonic() - back
        with app.app_context():
            job = enqueue("tests.job_tasks.count_to", 3, job_id="after-the-outage")
            done = wait_for(lambda: (status := job_status(job.id)) and status.ended and status, 15, "a job run")
        assert (done.status, done.result) == ("finished", 3)
        wait_for(lambda: {role for role, beat in beats(app).items() if beat.redis == REDIS_OK} == {"worker", "scheduler"},
                 10, lambda: f"both report Redis again: {beats(app)}")
        print(f"caught up {caught_up:.1f} s after Redis returned")
    finally:
        for process in (worker, scheduler):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = [stopped(process) for process in (worker, scheduler)]
        with app.app_context():
            db.engine.dispose()
    assert codes == [0, 0], (codes, worker_log.read_text()[-3000:], scheduler_log.read_text()[-3000:])
