"""A started job counts as running only while its worker's pulse beats (issue 21's note on test_worker_sigkill).

RQ keeps a SIGKILLed SimpleWorker's key for the job's timeout + 60 s, so judging a started job by its worker's key
left a customer whose replay was killed before it claimed its marker unqueued for eleven minutes. `python
worker.py`, as the Procfile runs it, beats a pulse per job; once it is killed the marker is taken within the
pulse's TTL, while RQ still lists the dead worker.
"""
import os
import signal
import time

import pytest
from redis import Redis
from rq.job import Job

from backoffice.jobs import PULSE_PREFIX, PULSE_TTL_MS, enqueue_once, marker_state
from tests.jobs.test_worker_survives import start, wait_for


def status(connection, job_id):
    value = connection.hget(Job.key_for(job_id), "status")
    return value.decode() if value else None


@pytest.mark.timeout(120)
def test_a_killed_workers_started_job_stops_blocking_its_key_within_the_pulse(make_app, committed_database, redis_url,
                                                                             tmp_path):
    app = make_app(REDIS_URL=redis_url, SQLALCHEMY_DATABASE_URI=committed_database)
    redis = Redis.from_url(redis_url)
    log = tmp_path / "worker.log"
    # A session of its own: the kill takes the worker's forked RQ scheduler too, as a container's end would; one
    # left behind would go on holding the scheduler's locks in this Redis database through later tests.
    worker = start(committed_database, redis_url, log, start_new_session=True)
    try:
        with app.app_context():
            # A job that ends takes its pulse with it.
            assert enqueue_once("pulse:quick", "time.sleep", 0, job_id="quick")
            wait_for(lambda: status(redis, "quick") == "finished", 60, lambda: log.read_text()[-3000:])
            assert not redis.exists(PULSE_PREFIX + "quick")

            # A job that runs (and has not claimed its key) keeps the key to itself while its pulse beats.
            assert enqueue_once("pulse:long", "time.sleep", 60, job_id="long")
            wait_for(lambda: status(redis, "long") == "started", 30, lambda: log.read_text()[-3000:])
            time.sleep(2 * PULSE_TTL_MS / 1000)  # beyond one TTL: the pulse is refreshed, not merely set once
            assert redis.exists(PULSE_PREFIX + "long")
            assert marker_state("pulse:long") == "long"
            assert not enqueue_once("pulse:long", "time.sleep", 0)

            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            killed = time.monotonic()
            wait_for(lambda: enqueue_once("pulse:long", "time.sleep", 0, job_id="after"), PULSE_TTL_MS / 1000 + 3,
                     "the key taken after the kill")
            waited = time.monotonic() - killed
            # RQ still believes in the dead worker, and in its job: only the pulse told.
            worker_name = redis.hget(Job.key_for("long"), "worker_name").decode()
            assert redis.exists(f"rq:worker:{worker_name}")
            assert status(redis, "long") == "started"
            assert marker_state("pulse:long") == "after"
    finally:
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is gone already
        worker.wait()
    print(f"key free {waited:.1f} s after the kill (pulse TTL {PULSE_TTL_MS / 1000:g} s)")
    assert waited <= PULSE_TTL_MS / 1000 + 3
